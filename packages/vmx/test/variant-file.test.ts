/**
 * Variant files (issue 13): every error is a ScenarioError at file:line:column — the file's own form
 * (keys, ops, features, conditions, sequences) and, checked against a real backend, the edits that
 * cannot apply (a step that is not there, one that needs a feature, a key on a step without one, a
 * move across sequences). A variant written back as YAML reads the same; a scenario with `variant:`
 * runs the edited KVM.
 */
import { describe, expect, test } from "vitest";
import { parseScenario, parseVariantFile, runScenario, ScenarioError, variantToData, variantToYaml } from "@kvmx/core";
import { vmxBackend } from "../src/index.js";

/** "file:line:col" of the first occurrence of `token` in `text`. */
function at(file: string, text: string, token: string): string {
  const i = text.indexOf(token);
  if (i < 0) throw new Error(`token ${token} not in text`);
  const lines = text.slice(0, i).split("\n");
  return `${file}:${lines.length}:${lines[lines.length - 1]!.length + 1}`;
}

function errorOf(text: string, opts: Parameters<typeof parseVariantFile>[2] = {}, file = "/v/my.yaml"): string {
  try {
    parseVariantFile(text, file, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as Error).message;
  }
  throw new Error("expected a ScenarioError");
}

const HEAD = "name: v\ndescription: d\n";
const onVmx = { backend: vmxBackend };
const expectAt = (text: string, token: string, msg: string | RegExp, opts: Parameters<typeof parseVariantFile>[2] = {}) => {
  const m = errorOf(text, opts);
  const where = `${at("/v/my.yaml", text, token)}: `;
  expect(m.startsWith(where), m).toBe(true);
  if (typeof msg === "string") expect(m.slice(where.length).startsWith(msg), m).toBe(true);
  else expect(m.slice(where.length)).toMatch(msg);
};

describe("variant files: the file's own form", () => {
  test("unknown keys point at the key; unknown features, sequences and conditions at the value", () => {
    expectAt(HEAD + "feature: [pkru]\n", "feature", 'unknown key "feature"');
    expectAt(HEAD + "features: [pkru, pkey]\n", "pkey", 'unknown feature "pkey"');
    expectAt(HEAD + "steps:\n  - drop: x86:load-guest-pkru\n    in: kvm-exit\n", "kvm-exit", 'unknown sequence "kvm-exit"');
    expectAt(HEAD + "steps:\n  - guard: x86:load-guest-dr6\n    when: guest-cr4-pkey\n", "guest-cr4-pkey", /guest-cr4-pkey/);
    expectAt(HEAD + "steps:\n  - key: x86:load-guest-pkru\n    on: { any: [guest-cr4-pke, nope] }\n", "{ any", /nope/);
    expectAt(HEAD + "steps:\n  - move: x86:machine-check\n    after: vmx:handle-nmi\n    in: kvm-run\n", "in: kvm-run", 'unknown key "in"');
  });

  test("an edit has exactly one op, with what that op needs", () => {
    expectAt(HEAD + "steps:\n  - { before: x86:fastpath }\n", "{ before", "a step edit needs one of move, drop, insert, replace, guard, key");
    expectAt(HEAD + "steps:\n  - { drop: x86:load-guest-pkru, move: x86:load-host-pkru }\n", "{ drop", "one op per step edit, not move and drop");
    expectAt(HEAD + "steps:\n  - move: x86:machine-check\n", "move:", "move needs before: or after:");
    expectAt(HEAD + "steps:\n  - move: x86:machine-check\n    before: guest\n    after: guest\n", "after: guest", "give before: or after:, not both");
    expectAt(HEAD + "steps:\n  - replace: x86:load-guest-xfeatures\n", "replace:", "replace needs with:");
    expectAt(HEAD + "steps:\n  - key: x86:load-guest-pkru\n", "key:", "key needs on:");
    expectAt(HEAD + "steps:\n  - drop: LoadGuestPkru\n", "LoadGuestPkru", '"LoadGuestPkru" is not a step id');
    expectAt(HEAD + "steps: { drop: x86:load-guest-pkru }\n", "{ drop", "steps must be a list of edits");
  });

  test("missing fields and YAML syntax errors carry a position too", () => {
    expectAt("name: v\nsteps: []\n", "name", "variant description must be a non-empty string");
    expect(errorOf("name: [unclosed\n")).toMatch(/^\/v\/my\.yaml:\d+:\d+: YAML syntax/);
  });

  test("base: is read relative to the file; an error in the base is reported in the base", () => {
    const files: Record<string, string> = {
      "/v/base.yaml": HEAD + "features: [sched-out]\nsteps:\n  - drop: x86:load-host-xfeatures\n",
      "/v/broken.yaml": HEAD + "features: [sched]\n",
    };
    const readFile = (p: string) => {
      const t = files[p];
      if (t === undefined) throw new Error("no such file");
      return t;
    };
    const v = parseVariantFile(HEAD + "base: base.yaml\nfeatures: [pkru]\nsteps:\n  - key: x86:load-guest-pkru\n    on: guest-cr4-pke\n", "/v/my.yaml", { readFile, ...onVmx });
    expect(v.features).toEqual(["sched-out", "pkru"]);
    expect(v.steps.map((e) => `${e.op} ${e.step}`)).toEqual(["drop x86:load-host-xfeatures", "key x86:load-guest-pkru"]);
    const broken = files["/v/broken.yaml"]!;
    expect(errorOf(HEAD + "base: broken.yaml\n", { readFile })).toBe(`${at("/v/broken.yaml", broken, "sched")}: unknown feature "sched" (known: ${errorOf(broken, {}, "/v/broken.yaml").split("(known: ")[1]}`);
    expectAt(HEAD + "base: missing.yaml\n", "missing.yaml", "cannot read base variant /v/missing.yaml", { readFile });
  });
});

describe("variant files checked against the backend's sequences", () => {
  test("a step that is not there, or comes with a feature the variant does not name", () => {
    expectAt(HEAD + "steps:\n  - drop: x86:no-such-step\n", "drop:", "step x86:no-such-step is not in any sequence of this machine", onVmx);
    expectAt(HEAD + "steps:\n  - drop: x86:load-guest-dr6\n", "drop:", /it comes with feature dr6; add it to features:/, onVmx);
    expectAt(HEAD + "steps:\n  - insert: x86:no-such-step\n    in: set-xcr\n", "insert:", "unknown step x86:no-such-step", onVmx);
    expectAt(HEAD + "steps:\n  - drop: x86:load-guest-pkru\n    in: set-xcr\n", "drop:", /^step x86:load-guest-pkru is not in sequence set-xcr/, { backend: vmxBackend });
  });

  test("fixed sites, keys on unkeyed steps and moves across sequences are refused where they are written", () => {
    expectAt(HEAD + "steps:\n  - drop: guest\n", "drop:", "guest cannot be dropped", onVmx);
    expectAt(HEAD + "steps:\n  - move: x86:fastpath\n    before: guest\n", "move:", "x86:fastpath cannot be moved", onVmx);
    expectAt(HEAD + "features: [dr6]\nsteps:\n  - key: x86:load-guest-dr6\n    on: guest-cr4-pke\n", "key:", "step x86:load-guest-dr6 has no key condition of its own", onVmx);
    expectAt(HEAD + "features: [xfd]\nsteps:\n  - move: x86:xfd-update-state\n    before: x86:handle-exit\n", "move:", /a step moves within its own sequence/, onVmx);
  });

  test("each op applies: the corpus's kinds of patch resolve on VMX", () => {
    const ok = HEAD + [
      "features: [pkru, dr6, machine-check]",
      "steps:",
      "  - key: x86:load-guest-pkru",
      "    on: guest-cr4-pke",
      "  - guard: x86:load-guest-dr6",
      "    when: '!db-wont-exit'",
      "  - move: x86:machine-check",
      "    before: x86:handle-exit",
      "  - replace: x86:load-guest-xfeatures",
      "    with: x86:load-guest-xcr0",
      "  - insert: x86:put-guest-xcr0",
      "    in: vcpu-put",
      "  - drop: x86:load-host-xfeatures",
      "",
    ].join("\n");
    const v = parseVariantFile(ok, "/v/ok.yaml", onVmx);
    expect(v.steps.map((e) => e.op)).toEqual(["key", "guard", "move", "replace", "insert", "drop"]);
    expect(parseVariantFile(variantToYaml(v), "/v/again.yaml", onVmx)).toSatisfy((w: typeof v) => JSON.stringify(variantToData(w)) === JSON.stringify(variantToData(v)));
    expect(parseVariantFile(JSON.stringify(variantToData(v)), "/v/again.json", onVmx).steps.length).toBe(6);
  });
});

describe("a scenario runs the variant it names", () => {
  const scenario = (variant: string) => [
    "name: pkru-leak",
    "backend: vmx",
    "design: upstream-v4",
    "host: { cpu: spr, kernelApx: false }",
    "guest: { apx: false }",
    "variant:",
    ...variant.trim().split("\n").map((l) => `  ${l}`),
    "events:",
    "  - guest-xsetbv 0x203",
    "  - { kind: guest-xrstor-pkru, value: '0x4' }",
    "",
  ].join("\n");
  const run = (variant: string) => runScenario(parseScenario(scenario(variant), "/v/s.yaml", { backend: (n) => (n === "vmx" ? vmxBackend : undefined) }));

  test("the PKRU switch keyed on CR4.PKE alone leaks the guest's PKRU to the VMM; keyed as upstream, it does not", () => {
    const pre = run("name: pre\ndescription: d\nfeatures: [pkru]\nsteps:\n  - key: x86:load-guest-pkru\n    on: guest-cr4-pke\n  - key: x86:load-host-pkru\n    on: guest-cr4-pke\n");
    expect([...new Set(pre.violations.map((x) => x.invariant))]).toEqual(["host-xstate"]);
    const post = run("name: post\ndescription: d\nfeatures: [pkru]\n");
    expect(post.violations).toEqual([]);
  });

  test("an error in an inline variant is reported at its line in the scenario", () => {
    const text = scenario("name: pre\ndescription: d\nfeatures: [pkru]\nsteps:\n  - key: x86:load-guest-dr6\n    on: guest-cr4-pke\n");
    try {
      parseScenario(text, "/v/s.yaml", { backend: (n) => (n === "vmx" ? vmxBackend : undefined) });
      throw new Error("expected a ScenarioError");
    } catch (e) {
      expect(e).toBeInstanceOf(ScenarioError);
      expect((e as Error).message.startsWith(`${at("/v/s.yaml", text, "key: x86:load-guest-dr6")}: `), (e as Error).message).toBe(true);
    }
  });
});
