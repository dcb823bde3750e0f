import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

/** `kvmx diff`: exit 69 without a device, 65 on a bad file, and the model-vs-model self-test mode. */
const REAL = (f: string) => fileURLToPath(new URL(`../../../scenarios/real/${f}`, import.meta.url));

const APX = `name: apx-absent
model: { cpu: dmr }
steps:
  - set-cpuid
  - set-xcrs: 0x800e7
  - set-xsave: { xstateBv: 0x80003, apx: [0x1111, 0x2222] }
  - set-xsave: { xstateBv: 0x3 }
  - get-xsave2
`;

describe("kvmx diff", () => {
  it("exits 69 when the KVM device cannot be opened, after the scenario parsed", async () => {
    const io = captureIo();
    expect(await main(["diff", REAL("xcr0-set-xcrs.yaml"), "--device", "/nonexistent/kvm"], io)).toBe(69);
    expect(io.stderr()).toMatch(/open \/nonexistent\/kvm: ENOENT/);
  });

  it("exits 65 with file:line:column for a bad scenario", async () => {
    const io = captureIo({ "/tmp/bad.yaml": "steps:\n  - set-xcrs: nope\n" });
    expect(await main(["diff", "/tmp/bad.yaml", "--device", "/nonexistent/kvm"], io)).toBe(65);
    expect(io.stderr()).toMatch(/bad\.yaml:2:15: xcr0 must be a u64/);
  });

  it("against a model with the other setXsaveApxAbsent choice: prints the one difference and exits 1", async () => {
    const io = captureIo({ "/tmp/apx.yaml": APX });
    expect(await main(["diff", "/tmp/apx.yaml", "--against-model", "setXsaveApxAbsent=init-zeros"], io)).toBe(1);
    const out = io.stdout();
    expect(out).toMatch(/step 4 get-xsave2 \(\/tmp\/apx\.yaml:8:5\) xsave\.APX/);
    expect(out).toMatch(/model +0x1111,0x2222,0x0/);
    expect(out).toMatch(/1 difference\(s\): 0 explained by host quirks, 1 unexplained/);
  });

  it("--json carries schemaVersion 1, the differences with u64s as strings, and the quirk table used", async () => {
    const io = captureIo({ "/tmp/apx.yaml": APX });
    expect(await main(["diff", "/tmp/apx.yaml", "--json", "--against-model", "setXsaveApxAbsent=init-zeros"], io)).toBe(1);
    const j = JSON.parse(io.stdout());
    expect(j).toMatchObject({ schemaVersion: 1, scenario: "apx-absent", left: "model", right: "model(setXsaveApxAbsent=init-zeros)", unexplained: 1, hostQuirks: [] });
    expect(j.differences).toHaveLength(1);
    expect(j.differences[0]).toMatchObject({ step: 4, kind: "get-xsave2", key: "xsave.APX" });
  });

  it("a scenario the assumption does not touch: no differences, exit 0", async () => {
    const io = captureIo();
    expect(await main(["diff", REAL("guest-programs.yaml"), "--against-model", "setXsaveApxAbsent=init-zeros"], io)).toBe(0);
    expect(io.stdout()).toMatch(/no differences/);
  });

  it("--quirks lists the named host quirks with their FACTS.md references", async () => {
    const io = captureIo();
    expect(await main(["diff", "--quirks"], io)).toBe(0);
    const lines = io.stdout().trim().split("\n");
    expect(lines).toHaveLength(7);
    expect(lines[0]).toMatch(/^cpuid2-host-leaves +KVM_SET_CPUID2 leaves 1 and 0xD .*\(FACTS\.md §8, first quirk\)$/);
    const j = captureIo();
    expect(await main(["diff", "--quirks", "--json"], j)).toBe(0);
    expect(JSON.parse(j.stdout()).hostQuirks.map((q: { name: string }) => q.name)).toContain("get-fpu-mxcsr-zero");
  });

  it("rejects an unknown assumption with exit 65", async () => {
    const io = captureIo();
    expect(await main(["diff", REAL("guest-programs.yaml"), "--against-model", "colour=red"], io)).toBe(65);
    expect(io.stderr()).toMatch(/not <assumption>=<alternative>/);
  });
});
