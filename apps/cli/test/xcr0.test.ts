import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

const run = async (args: string[]) => {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
};

describe("kvmx xcr0 check", () => {
  it("a valid value exits 0 with valid:true", async () => {
    const r = await run(["xcr0", "check", "0xe7", "--profile", "kvm-pvm", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ schemaVersion: 1, valid: true, failedRule: null, xcr0: "0xe7", rules: "architectural" });
  });
  it("an invalid value prints the failed rule and exits 1", async () => {
    const r = await run(["xcr0", "check", "27", "--profile", "kvm-pvm", "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ valid: false, failedRule: "avx512-incomplete" });
    const human = await run(["xcr0", "check", "0x80003", "--profile", "kvm-pvm"]);
    expect([human.code, human.out]).toEqual([1, expect.stringContaining("unsupported-bit")]);
  });
  it("--kvm svm drops APX that --kvm vmx keeps (dmr host)", async () => {
    expect((await run(["xcr0", "check", "0x80007", "--profile", "dmr", "--kvm", "vmx"])).code).toBe(0);
    const svm = await run(["xcr0", "check", "0x80007", "--profile", "dmr", "--kvm", "svm", "--json"]);
    expect([svm.code, JSON.parse(svm.out).failedRule]).toEqual([1, "unsupported-bit"]);
    expect((await run(["xcr0", "check", "0x80007", "--profile", "dmr"])).code).toBe(0);
  });
  it("bad hex exits 65; an unknown profile or vendor is a usage error (2); one line on stderr", async () => {
    for (const [args, code] of [
      [["xcr0", "check", "0xzz", "--profile", "spr"], 65],
      [["xcr0", "check", "0x1ffffffffffffffff", "--profile", "spr"], 65],
      [["xcr0", "check", "0x7", "--profile", "spr", "--index", "x"], 65],
      [["xcr0", "check", "0x7", "--profile", "nehalem"], 2],
    ] as const) {
      const r = await run([...args]);
      expect(r.code, args.join(" ")).toBe(code);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.out).toBe("");
    }
    const vendor = await run(["xcr0", "check", "0x7", "--profile", "spr", "--kvm", "tdx"]);
    expect([vendor.code, vendor.err]).toEqual([2, expect.stringMatching(/Allowed choices are vmx, svm/)]);
    expect((await run(["xcr0", "check", "0xzz", "--profile", "spr"])).err).toMatch(/hex, 0x optional: 27 means 0x27/);
  });
  it("--profile takes a CPUID dump file (kvmx probe --json shape)", async () => {
    const { cpuProfile } = await import("@kvmx/core");
    const dump = JSON.stringify({ schemaVersion: 1, cpuid: cpuProfile("dmr").cpuid });
    const io = captureIo({ "host-cpuid.json": dump });
    expect(await main(["xcr0", "check", "0x80007", "--profile", "host-cpuid.json", "--json"], io)).toBe(0);
    expect(JSON.parse(io.stdout())).toMatchObject({ profile: "host-cpuid.json", supported: "0xe02e7", valid: true });
    const bad = captureIo({ "bad.json": "[1]" });
    expect(await main(["xcr0", "check", "0x7", "--profile", "bad.json"], bad)).toBe(65);
    const missing = captureIo();
    expect(await main(["xcr0", "check", "0x7", "--profile", "./nope.json"], missing)).toBe(65);
    expect(missing.stderr()).toMatch(/^kvmx: \.\/nope\.json: cannot read CPUID dump: no such file or directory \(ENOENT\)\n$/);
  });
});
