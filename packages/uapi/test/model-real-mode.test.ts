import { svmBackend } from "@kvmx/svm";
import { describe, expect, it } from "vitest";
import { observeScenario } from "../src/diff/observe.js";
import { parseRealScenario } from "../src/diff/real-scenario.js";
import { decodeExtra } from "../src/model/guest-extras.js";
import { ModelKvm } from "../src/model/model-kvm.js";

/**
 * Real-mode guest code on the model (scenarios/real/real-mode.yaml, which the lab's kernels ran):
 * 16- and 32-bit operand sizes, OUT of 2 and 4 bytes, and exceptions through the IVT.
 */
const kvm = new ModelKvm({ backend: svmBackend, cpu: "zen" });
const run = (yaml: string) => {
  const s = parseRealScenario(`steps:\n  - set-cpuid\n${yaml}`, "rm.yaml");
  return observeScenario(kvm, s, kvm.cfg.profile).map((o) => o.obs);
};

describe("the guest decoder's operand sizes", () => {
  it("0x66 flips 16 and 32 bits; MOV r, imm and OUT imm8/DX take the size", () => {
    expect(decodeExtra(Uint8Array.of(0xb8, 0x34, 0x12), "real")).toEqual({ op: "mov-imm", reg: 0, size: 2, imm: 0x1234, length: 3 });
    expect(decodeExtra(Uint8Array.of(0x66, 0xba, 1, 2, 3, 4), "real")).toEqual({ op: "mov-imm", reg: 2, size: 4, imm: 0x04030201, length: 6 });
    expect(decodeExtra(Uint8Array.of(0xe7, 0x10), "protected", true)).toEqual({ op: "out-eax", size: 4, port: 0x10, length: 2 });
    expect(decodeExtra(Uint8Array.of(0x66, 0xef), "long64")).toEqual({ op: "out-eax", size: 2, port: "dx", length: 2 });
    // 64-bit MOV r32, imm32 is core's (B8 without a prefix there); a lone 0x66 before anything else is not ours
    expect(decodeExtra(Uint8Array.of(0xb8, 1, 0, 0, 0), "long64")).toBeUndefined();
    expect(decodeExtra(Uint8Array.of(0x66, 0x90), "real")).toBeUndefined();
  });
});

describe("real mode on the model", () => {
  it("OUT of 2 and 4 bytes, to an immediate port and to DX, with 16- and 32-bit MOVs", () => {
    const [, r] = run('  - run: { program: real-mode, code: "b83412e71066b87856341266e710ba1200b005ee66eff4", maxExits: 6 }\n');
    expect(r).toMatchObject({
      "exit.0": "io out port=0x10 size=2 count=1 data=3412",
      "exit.1": "io out port=0x10 size=4 count=1 data=78563412",
      "exit.2": "io out port=0x12 size=1 count=1 data=05",
      "exit.3": "io out port=0x12 size=4 count=1 data=05563412",
      "exit.4": "hlt",
      "regs.rax": "0x12345605",
    });
  });

  it("#UD goes through the IVT: FLAGS, CS and IP pushed (SP 0x7000 → 0x6ffa), CS:IP from entry 6", () => {
    const [, r] = run('  - run: { program: real-mode, code: "90900f0b", at: { "0x2000": "b006e611f4" }, ivt: { 6: 0x2000 }, maxExits: 3 }\n');
    expect(r).toMatchObject({ "exit.0": "io out port=0x11 size=1 count=1 data=06", "fault-vector": "6", "exit.1": "hlt", "regs.rsp": "0x6ffa", "regs.rip": "0x2005" });
  });
});
