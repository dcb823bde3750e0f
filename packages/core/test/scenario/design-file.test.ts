import { describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { BUILTIN_DESIGNS } from "../../src/kvm/designs.js";
import { parseDesignFile } from "../../src/scenario/design-file.js";
import { ScenarioError } from "../../src/errors.js";
import { at } from "./text-position.js";

function errorOf(text: string): string {
  try {
    parseDesignFile(text, "my.yaml");
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as Error).message;
  }
  throw new Error("expected a ScenarioError");
}

const HEAD = "name: d\ndescription: x\nsource: y\negprHome: regs\nactions:\n";
const expectAt = (text: string, token: string, msg: string) => {
  const m = errorOf(text);
  expect(m.startsWith(`${at("my.yaml", text, token)}: ${msg}`), m).toBe(true);
};

describe("design files", () => {
  test("every built-in design survives YAML and JSON round trips unchanged", () => {
    for (const d of BUILTIN_DESIGNS) {
      expect(parseDesignFile(stringify(d), "d.yaml")).toEqual(d);
      expect(parseDesignFile(JSON.stringify(d), "d.json")).toEqual(d);
    }
  });

  test("unknown anchor, op, condition and via: file:line:column of the value", () => {
    expect(at("f", "ab\ncd", "d")).toBe("f:2:2");
    expectAt(HEAD + "  - { anchor: asm-before-vmentr, op: load-egprs }\n", "asm-before-vmentr", 'unknown anchor "asm-before-vmentr"');
    expectAt(HEAD + "  - anchor: asm-after-vmexit\n    op: save-egprs\n", "save-egprs", 'unknown op "save-egprs"');
    expectAt(HEAD + "  - anchor: asm-after-vmexit\n    op: store-egprs\n    when: guest-apx\n", "guest-apx", 'unknown condition "guest-apx"');
    expectAt(HEAD + "  - { anchor: asm-after-vmexit, op: store-egprs, via: push3 }\n", "push3", 'unknown via "push3"');
    expectAt(HEAD + '  - { anchor: asm-after-vmexit, op: store-egprs, when: "!always" }\n', '"!always"', 'unknown condition "!always"');
  });

  test("unknown keys point at the key; xsetbv needs a target; negated conditions are accepted", () => {
    expectAt(HEAD + "  - { anchor: asm-after-vmexit, op: store-egprs, wen: always }\n", "wen", 'unknown key "wen"');
    expectAt(HEAD + "  - { anchor: guest-xfeatures, op: xsetbv }\n", "{ anchor", "op xsetbv needs xcr0");
    const d = parseDesignFile(HEAD + '  - { anchor: asm-after-vmexit, op: store-egprs, when: "!kernel-apx" }\n', "ok.yaml");
    expect(d.actions[0]).toEqual({ anchor: "asm-after-vmexit", op: "store-egprs", when: "!kernel-apx" });
  });

  test("missing fields, bad enums and YAML syntax errors carry a position too", () => {
    expectAt("name: d\negprHome: regs\n", "name", "design description must be a non-empty string");
    expect(errorOf("name: [unclosed\n")).toMatch(/^my\.yaml:\d+:\d+: YAML syntax/);
    const bad = HEAD.replace("egprHome: regs", "egprHome: registers");
    expectAt(bad, "registers", 'unknown egprHome "registers"');
  });

  test("protectedGuests takes skip or apply, and a bad value is reported at its position", () => {
    const d = parseDesignFile("protectedGuests: apply\n" + HEAD + "  - { anchor: asm-after-vmexit, op: store-egprs }\n", "ok.yaml");
    expect(d.protectedGuests).toBe("apply");
    expect(parseDesignFile(HEAD + "  []\n", "ok.yaml").protectedGuests).toBeUndefined();
    expectAt("protectedGuests: sometimes\n" + HEAD, "sometimes", 'unknown protectedGuests "sometimes"');
  });
});
