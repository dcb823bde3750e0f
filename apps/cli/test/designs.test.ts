import { describe, expect, test } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

describe("kvmx designs", () => {
  test("lists the built-in designs with description, source and actions", async () => {
    const io = captureIo();
    expect(await main(["designs"], io)).toBe(0);
    const out = io.stdout();
    for (const n of ["fpstate", "c-xfeatures", "early-xcr0", "early-xcr0-misordered", "asm-conditional", "asm-unconditional", "hw-xcr0-switch"]) {
      expect(out).toMatch(new RegExp(`^${n} — EGPRs in`, "m"));
    }
    expect(out).toContain("source: docs/facts.md#position-asm-unconditional");
    expect(out).toContain("@asm-after-vmexit: store-egprs via=push2pop2 when cpu-apx");
  });

  test("--json carries schemaVersion 1; a design file is validated and listed", async () => {
    const file = "name: mine\ndescription: d\nsource: s\negprHome: regs\nactions:\n  - { anchor: asm-after-vmexit, op: store-egprs }\n";
    const io = captureIo({ [`${process.cwd()}/mine.yaml`]: file });
    expect(await main(["designs", "mine.yaml", "--json"], io)).toBe(0);
    const j = JSON.parse(io.stdout());
    expect(j.schemaVersion).toBe(1);
    expect(j.designs.find((d: { name: string }) => d.name === "mine")).toMatchObject({ builtin: false, egprHome: "regs" });
  });

  test("an invalid design file exits 65 pointing at the bad anchor", async () => {
    const io = captureIo({ [`${process.cwd()}/bad.yaml`]: "name: b\ndescription: d\nsource: s\negprHome: regs\nactions:\n  - { anchor: somewhere, op: load-egprs }\n" });
    expect(await main(["designs", "bad.yaml"], io)).toBe(65);
    expect(io.stderr()).toMatch(/bad\.yaml:6:15: unknown anchor "somewhere"/);
  });
});
