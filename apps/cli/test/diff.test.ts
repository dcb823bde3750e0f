import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

/** `kvmx diff`: exit 69 without a device, 65 on a bad file, and the model-vs-model self-test mode. */
const REAL = (f: string) => fileURLToPath(new URL(`../../../scenarios/real/${f}`, import.meta.url));
const TRANSCRIPT = (f: string) => fileURLToPath(new URL(`../../../scenarios/real/transcripts/${f}`, import.meta.url));

// A guest XSETBV that clears XCR0.APX: under xcr0ApxDisable=clear R16–R31 are zeroed, so KVM's copy is too
const APX = `name: apx-xsetbv-off
model: { cpu: dmr }
steps:
  - set-cpuid
  - set-xcrs: 0x800e7
  - set-xsave: { xstateBv: 0x80003, apx: [0x1111, 0x2222] }
  - run: { program: xsetbv, xcr0: 0xe7 }
  - set-xcrs: 0x800e7
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

  it("against a model with the other xcr0ApxDisable choice: prints the one difference and exits 1", async () => {
    const io = captureIo({ "/tmp/apx.yaml": APX });
    expect(await main(["diff", "/tmp/apx.yaml", "--against-model", "xcr0ApxDisable=clear"], io)).toBe(1);
    const out = io.stdout();
    expect(out).toMatch(/step 5 get-xsave2 \(\/tmp\/apx\.yaml:9:5\) xsave\.APX/);
    expect(out).toMatch(/model +0x1111,0x2222,0x0/);
    expect(out).toMatch(/1 scenario\(s\), 1 difference\(s\): 0 explained by host quirks, 0 pending model bug\(s\), 1 unexplained/);
  });

  it("--json carries schemaVersion 2, one report per scenario with the differences, and the quirk table used", async () => {
    const io = captureIo({ "/tmp/apx.yaml": APX });
    expect(await main(["diff", "/tmp/apx.yaml", "--json", "--against-model", "xcr0ApxDisable=clear"], io)).toBe(1);
    const j = JSON.parse(io.stdout());
    expect(j).toMatchObject({ schemaVersion: 2, unexplained: 1, pending: 0, hostQuirks: [] });
    expect(j.reports).toHaveLength(1);
    expect(j.reports[0]).toMatchObject({ scenario: "apx-xsetbv-off", left: "model", right: "model(xcr0ApxDisable=clear)", unexplained: 1 });
    expect(j.reports[0].differences[0]).toMatchObject({ step: 5, kind: "get-xsave2", key: "xsave.APX" });
  });

  it("a scenario the assumption does not touch: no differences, exit 0", async () => {
    const io = captureIo();
    expect(await main(["diff", REAL("guest-programs.yaml"), "--against-model", "xcr0ApxDisable=clear"], io)).toBe(0);
    expect(io.stdout()).toMatch(/no differences/);
  });

  it("--quirks lists each host kind's accepted differences with their docs/facts.md anchors, then the pending model bugs", async () => {
    const io = captureIo();
    expect(await main(["diff", "--quirks"], io)).toBe(0);
    const out = io.stdout();
    expect(out).toMatch(/^kvm_amd on an emulated CPU:\n  tcg-xsetbv-not-intercepted +QEMU's SVM emulation has no XSETBV intercept.*\(docs\/facts\.md#tcg-kvm-amd\)$/m);
    expect(out).toMatch(/^kvm_pvm:\n  cpuid2-host-leaves +KVM_SET_CPUID2 leaves 1 and 0xD .*\(docs\/facts\.md#host-quirks\)$/m);
    expect(out).toMatch(/^known model bugs, fix pending:\n  \(none\)\n$/m);
    const j = captureIo();
    expect(await main(["diff", "--quirks", "--json"], j)).toBe(0);
    const doc = JSON.parse(j.stdout());
    expect(doc.hostKinds.find((k: { hostKind: string }) => k.hostKind === "kvm_pvm").quirks.map((q: { name: string }) => q.name)).toContain("segments-verbatim");
    expect(doc.pendingModelBugs).toEqual([]);
  });

  it("no scenario file (and no --replay or --quirks) is a usage error, exit 2", async () => {
    const io = captureIo();
    expect(await main(["diff"], io)).toBe(2);
    expect(io.stderr()).toMatch(/kvmx diff needs scenario files \(or --replay FILE, or --quirks\)/);
    expect(await main(["diff", REAL("xcr0-set-xcrs.yaml"), "--record-only"], captureIo())).toBe(2);
    expect(await main(["diff", REAL("xcr0-set-xcrs.yaml"), "--lab", "--replay", TRANSCRIPT("6.12-max.json")], captureIo())).toBe(2);
  });

  it("--replay compares the model with a recorded kernel, no device: quirks named, no pending model bug left (--strict exits 0), exit 0", async () => {
    const io = captureIo();
    expect(await main(["diff", "--replay", TRANSCRIPT("6.12-max.json")], io)).toBe(0);
    const out = io.stdout();
    expect(out).toMatch(/^real side: linux 6\.12\.\S+ \(kvm_amd on an emulated CPU\), CPU QEMU TCG CPU/);
    expect(out).toMatch(/explained by host quirk tcg-xsetbv-not-intercepted/);
    expect(out).not.toMatch(/MODEL BUG/);
    expect(out).toMatch(/, 0 pending model bug\(s\), 0 unexplained\n$/);
    // the host without XSAVE (qemu64): no XCRs, the FXSAVE area as KVM_GET/SET_XSAVE — as the model now does
    const q = captureIo();
    expect(await main(["diff", "--replay", TRANSCRIPT("6.12-qemu64-svm-npt.json"), "--strict"], q)).toBe(0);
    expect(q.stdout()).toMatch(/ 0 pending model bug\(s\), 0 unexplained\n$/);
  });

  it("--replay of chosen scenarios; one the transcript lacks, or a file that is no transcript, is bad input (65)", async () => {
    const io = captureIo();
    expect(await main(["diff", "--replay", TRANSCRIPT("6.1-max.json"), REAL("regs-sync.yaml")], io)).toBe(0);
    expect(io.stdout().match(/^regs-sync /gm)).toHaveLength(1);
    expect(io.stdout()).toMatch(/^1 scenario\(s\)/m);
    const missing = captureIo();
    expect(await main(["diff", "--replay", TRANSCRIPT("6.1-max.json"), "/tmp/other.yaml"], { ...missing, readInput: async () => Buffer.from("steps: [get-regs]\n") })).toBe(65);
    // --replay files are checked on disk before the command runs, so this one is a real file
    const file = join(mkdtempSync(join(tmpdir(), "kvmx-diff-")), "t.json");
    writeFileSync(file, "{\"schemaVersion\": 9}");
    const bad = captureIo();
    expect(await main(["diff", "--replay", file], bad)).toBe(65);
    expect(bad.stderr()).toMatch(/t\.json: not a kvmx transcript: schemaVersion must be 1/);
  });

  it("rejects an unknown assumption with exit 65", async () => {
    const io = captureIo();
    expect(await main(["diff", REAL("guest-programs.yaml"), "--against-model", "colour=red"], io)).toBe(65);
    expect(io.stderr()).toMatch(/not <assumption>=<alternative>/);
  });
});
