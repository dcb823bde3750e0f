import { vmxBackend } from "@kvmx/vmx";
import { describe, expect, it } from "vitest";
import { cpuidLoopProgram, GUEST_MEMORY_SIZE, loadGuestProgram, longModeProgram, movProgram } from "../src/guest/guest-program.js";
import { GUEST_REPORT_PORT } from "../src/guest/long-mode.js";
import { insn } from "@kvmx/core";
import { ModelKvm } from "../src/model/model-kvm.js";
import { xstateRequiredSize } from "../src/model/cpuid-runtime.js";

/**
 * Model bugs the lab's real kvm_amd showed (scenarios/real transcripts), each pinned here with the
 * kernel behaviour it now follows: RDX at RESET, RIP on an OUT exit, KVM_GET/SET_FPU on the raw
 * legacy area, CPUID's runtime fields, the host's user xfeatures in KVM_GET_XSAVE.
 */
const kvm = new ModelKvm({ backend: vmxBackend, cpu: "kvm-pvm" });
const fresh = () => {
  const vm = kvm.createVm();
  return { vm, v: vm.createVcpu(0) };
};
const xsetXcrs = (v: ReturnType<typeof fresh>["v"], x: bigint) => v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: x }] });

describe("what the lab showed", () => {
  it("kvm_vcpu_reset: RDX is 0x600 on a vCPU that never had KVM_SET_CPUID2, and KVM_SET_CPUID2 does not change it", () => {
    const { v } = fresh();
    expect(v.getRegs().rdx).toBe(0x600n);
    v.setCpuid2(kvm.getSupportedCpuid());
    expect(v.getRegs().rdx).toBe(0x600n);
  });

  it("an OUT exit leaves RIP on the OUT; the next KVM_RUN skips it (complete_fast_pio_out)", () => {
    const { vm, v } = fresh();
    v.setCpuid2(kvm.getSupportedCpuid());
    const p = movProgram(new Map(), {});
    const mem = loadGuestProgram(vm, v, p);
    const e = v.run();
    expect(e).toMatchObject({ kind: "io", port: GUEST_REPORT_PORT });
    const atOut = v.getRegs().rip;
    // the OUT (E6 ib) is at RIP, not behind it
    expect(Array.from(mem.read(atOut, 2))).toEqual([0xe6, GUEST_REPORT_PORT]);
    expect(v.run().kind).toBe("hlt");
    // HLT follows the OUT: RIP is past both
    expect(v.getRegs().rip).toBe(atOut + 2n + 1n);
  });

  it("userspace moving RIP between the OUT exit and the next KVM_RUN cancels the skip (kvm_is_linear_rip)", () => {
    const { vm, v } = fresh();
    v.setCpuid2(kvm.getSupportedCpuid());
    // OUT; OUT; HLT: after the first exit, point RIP at the second OUT by hand
    loadGuestProgram(vm, v, longModeProgram((a) => a.movAl(7).insn(insn.outImm8(GUEST_REPORT_PORT)).movAl(8).insn(insn.outImm8(GUEST_REPORT_PORT)).insn(insn.hlt())));
    expect(v.run()).toMatchObject({ kind: "io", data: Uint8Array.of(7) });
    const regs = v.getRegs();
    v.setRegs({ ...regs, rip: regs.rip + 4n, rax: 9n }); // past the first OUT and `mov al, 8`: on the second OUT
    expect(v.run()).toMatchObject({ kind: "io", data: Uint8Array.of(9) });
  });

  it("KVM_GET_FPU reports MXCSR 0; KVM_SET_FPU writes the raw legacy area and leaves XSTATE_BV and MXCSR alone", () => {
    const { v } = fresh();
    v.setCpuid2(kvm.getSupportedCpuid());
    expect(v.getFpu().mxcsr).toBe(0);
    const bvBefore = new DataView(v.getXsave().buffer).getBigUint64(512, true);
    v.setFpu({ ...v.getFpu(), fcw: 0x27f, mxcsr: 0xffff_ffff });
    const img = v.getXsave();
    const dv = new DataView(img.buffer);
    expect(dv.getBigUint64(512, true)).toBe(bvBefore);
    expect(dv.getUint32(24, true)).toBe(0x1f80);
    // GET_FPU reads the raw bytes; FP is not in XSTATE_BV, so KVM_GET_XSAVE shows FP's init state
    expect(v.getFpu().fcw).toBe(0x27f);
    expect(dv.getUint16(0, true)).toBe(0x37f);
  });

  it("KVM_RUN loads FP from its init state when XSTATE_BV lacks it: a KVM_SET_FPU before that is lost", () => {
    const { vm, v } = fresh();
    v.setCpuid2(kvm.getSupportedCpuid());
    v.setFpu({ ...v.getFpu(), fcw: 0x27f });
    loadGuestProgram(vm, v, cpuidLoopProgram(1n));
    v.run();
    expect(v.getFpu().fcw).toBe(0x37f);
    // with FP in XSTATE_BV (KVM_SET_XSAVE) the same value survives a run
    const img = v.getXsave();
    new DataView(img.buffer).setBigUint64(512, 0x3n, true);
    new DataView(img.buffer).setUint16(0, 0x27f, true);
    v.setXsave(img);
    v.run();
    expect(v.getFpu().fcw).toBe(0x27f);
  });

  it("CPUID 0xD.0 EBX is the XSAVE size of the current XCR0 (kvm_update_cpuid_runtime), in the guest and after KVM_SET_XCRS", () => {
    const { vm, v } = fresh();
    v.setCpuid2(kvm.getSupportedCpuid());
    const mem = vm.addMemory(0, 0n, GUEST_MEMORY_SIZE);
    const ebxOf = (xcr0: bigint) => {
      xsetXcrs(v, xcr0);
      loadGuestProgram(vm, v, longModeProgram((a) => a.insn(insn.movImm(0, 0xdn)).insn(insn.movImm(1, 0n)).insn(insn.cpuid()).insn(insn.hlt())), mem);
      expect(v.run().kind).toBe("hlt");
      return Number(v.getRegs().rbx);
    };
    expect(ebxOf(0x7n)).toBe(832);
    expect(ebxOf(0x3n)).toBe(576);
    expect(ebxOf(0xe7n)).toBe(2688);
    expect(xstateRequiredSize(0xe7n, false, kvm.cfg.profile)).toBe(2688);
  });

  it("KVM_GET_XSAVE bytes 464..471 carry the host kernel's user xfeatures when the model is told them", () => {
    const k = new ModelKvm({ backend: vmxBackend, cpu: "kvm-pvm", hostUserXfeatures: 0x21fn });
    const v = k.createVm().createVcpu(0);
    expect(new DataView(v.getXsave().buffer).getBigUint64(464, true)).toBe(0x21fn);
    expect(new DataView(fresh().v.getXsave().buffer).getBigUint64(464, true)).toBe(kvm.cfg.hostXcr0);
  });
});
