import { fc, test } from "@fast-check/vitest";
import { insn, validXcr0Values } from "@kvmx/core";
import { vmxBackend } from "@kvmx/vmx";
import { describe, expect, it } from "vitest";
import { KVM_EXIT, KVM_INTERNAL_ERROR } from "../src/exit-reasons.js";
import { faultProgram, loadGuestProgram, longModeProgram, movProgram, xsetbvProgram, cpuidLoopProgram, type GuestProgram } from "../src/guest/guest-program.js";
import { GUEST_REPORT_PORT, GUEST_VECTOR_PORT } from "../src/guest/long-mode.js";
import { ModelKvm } from "../src/model/model-kvm.js";
import type { Assembler } from "../src/guest/assembler.js";
import type { ModelVcpu } from "../src/model/model-vcpu.js";
import type { KvmExit } from "../src/structs/kvm-run.js";

/**
 * KVM_RUN on the simulated vCPU: guest programs from src/guest run from guest memory through core's
 * decoder and executor; XSETBV goes through KVM's emulation (__kvm_set_xcr), faults through the
 * guest's IDT, OUT/HLT to userspace, anything outside the subset to KVM_EXIT_INTERNAL_ERROR.
 */
const pvm = new ModelKvm({ backend: vmxBackend, cpu: "kvm-pvm" });
const dmr = new ModelKvm({ backend: vmxBackend, cpu: "dmr" });

function boot(kvm: ModelKvm, p: GuestProgram, xcr0?: bigint): ModelVcpu {
  const vm = kvm.createVm();
  const v = vm.createVcpu(0);
  v.setCpuid2(kvm.getSupportedCpuid());
  if (xcr0 !== undefined) v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: xcr0 }] });
  loadGuestProgram(vm, v, p);
  return v;
}

const io = (e: KvmExit) => (e.kind === "io" ? { port: e.port, value: e.data[0], direction: e.direction, size: e.size } : { kind: e.kind });

describe("guest programs on the model", () => {
  it("XSETBV with a valid value: KVM emulates it, the guest reports 1 and halts; XCR0 is the new value", () => {
    const v = boot(pvm, xsetbvProgram(0xe7n));
    expect(io(v.run())).toEqual({ port: GUEST_REPORT_PORT, value: 1, direction: "out", size: 1 });
    expect(v.run().exitReason).toBe(KVM_EXIT.HLT);
    expect(v.getXcrs().xcrs[0]!.value).toBe(0xe7n);
  });

  const VALID = new Set(validXcr0Values(0xe7n));
  test.prop([fc.oneof(fc.integer({ min: 0, max: 0xff }).map(BigInt), fc.constantFrom(0x80007n, 0x100000007n))], { numRuns: 60 })(
    "guest XSETBV succeeds exactly when KVM_SET_XCRS would accept the value; otherwise #GP (vector 13) and XCR0 unchanged",
    (x) => {
      const v = boot(pvm, xsetbvProgram(x));
      const first = io(v.run());
      if (VALID.has(x)) {
        expect(first).toEqual({ port: GUEST_REPORT_PORT, value: 1, direction: "out", size: 1 });
        expect(v.getXcrs().xcrs[0]!.value).toBe(x);
      } else {
        expect(first).toEqual({ port: GUEST_VECTOR_PORT, value: 13, direction: "out", size: 1 });
        expect(v.getXcrs().xcrs[0]!.value).toBe(1n);
      }
    },
  );

  it("UD2 and an R16 MOV with XCR0.APX=0 raise #UD, reported by the IDT stub as vector 6 (CPL 3)", () => {
    expect(io(boot(pvm, faultProgram("ud2")).run())).toMatchObject({ port: GUEST_VECTOR_PORT, value: 6 });
    expect(io(boot(pvm, faultProgram("egpr-mov")).run())).toMatchObject({ port: GUEST_VECTOR_PORT, value: 6 });
    expect(io(boot(dmr, faultProgram("egpr-mov"), 0xe7n).run())).toMatchObject({ port: GUEST_VECTOR_PORT, value: 6 });
  });

  it.each(["asm-conditional", "fpstate"])("design %s: with XCR0.APX=1 on an APX part the R16 MOV runs, and KVM_GET_XSAVE2 component 19 shows the guest's R16", (design) => {
    const kvm = new ModelKvm({ backend: vmxBackend, cpu: "dmr", design });
    const v = boot(kvm, faultProgram("egpr-mov"), 0x800e7n);
    // the MOV succeeds; the HLT after it is privileged at CPL 3: #GP, vector 13
    expect(io(v.run())).toMatchObject({ port: GUEST_VECTOR_PORT, value: 13 });
    const img = v.getXsave2();
    expect(new DataView(img.buffer).getBigUint64(960, true)).toBe(0x1234n);
  });

  it("a fault at CPL 3 lands on TSS.RSP0 with the SDM frame; CS becomes the kernel code segment", () => {
    const v = boot(pvm, faultProgram("ud2"));
    v.run();
    const regs = v.getRegs();
    // frame: SS, RSP, RFLAGS, CS, RIP pushed below the 16-byte aligned RSP0 (0xf000); #UD has no error code
    expect(regs.rsp).toBe(0xf000n - 5n * 8n);
    expect(v.getSregs().cs.selector).toBe(0x08);
    expect(v.getSregs().cs.dpl).toBe(0);
    const frame = v.mem.slots[0]!.read(regs.rsp, 40);
    const dv = new DataView(frame.buffer);
    expect(dv.getBigUint64(0, true)).toBe(0x10000n); // RIP of UD2 (the program entry)
    expect(dv.getBigUint64(8, true)).toBe(0x23n); // user CS
    expect(dv.getBigUint64(32, true)).toBe(0x1bn); // user SS
  });

  it("OUT at CPL 3 with IOPL 0 is #GP (vector 13); at CPL 0 the MOVs land in the registers", () => {
    expect(io(boot(pvm, movProgram(new Map([[0, 1n]]), { cpl: 3 })).run())).toMatchObject({ port: GUEST_VECTOR_PORT, value: 13 });
    const v = boot(pvm, movProgram(new Map([[3, 0x1111n], [9, 0x2222n], [15, (1n << 64n) - 1n]])));
    expect(io(v.run())).toMatchObject({ port: GUEST_REPORT_PORT, value: 2 });
    expect(v.getRegs()).toMatchObject({ rbx: 0x1111n, r9: 0x2222n, r15: (1n << 64n) - 1n });
  });

  it("CPUID exits are handled inside KVM from the KVM_SET_CPUID2 table", () => {
    const v = boot(pvm, cpuidLoopProgram(5n));
    expect(io(v.run())).toMatchObject({ port: GUEST_REPORT_PORT, value: 3 });
    const leaf0 = pvm.getSupportedCpuid().find((e) => e.function === 0)!;
    // the last CPUID(0) left the vendor string in EBX/EDX/ECX
    expect(v.getRegs()).toMatchObject({ rbx: BigInt(leaf0.ebx), rdx: BigInt(leaf0.edx), rcx: BigInt(leaf0.ecx) });
  });

  it("CPUID.1:ECX.OSXSAVE mirrors the guest's CR4.OSXSAVE (kvm_update_cpuid_runtime)", () => {
    const cpuid1 = (osxsave: boolean) =>
      longModeProgram((a) => a.insn(insn.movImm(0, 1n)).insn(insn.movImm(1, 0n)).insn(insn.cpuid()).insn(insn.hlt()), { osxsave });
    const on = boot(pvm, cpuid1(true));
    expect(on.run().kind).toBe("hlt");
    expect((on.getRegs().rcx >> 27n) & 1n).toBe(1n);
    const off = boot(pvm, cpuid1(false));
    expect(off.run().kind).toBe("hlt");
    expect((off.getRegs().rcx >> 27n) & 1n).toBe(0n);
    // XSAVE itself (bit 26) is what KVM_SET_CPUID2 installed
    expect((off.getRegs().rcx >> 26n) & 1n).toBe(1n);
  });

  it("a load from an unmapped linear address is #PF (vector 14) with CR2 = the address", () => {
    const p = longModeProgram((a) => a.insn(insn.movImm(3, 0x4000_0000n)).insn(insn.load(0, { base: 3, disp: 8 })).insn(insn.hlt()));
    const v = boot(pvm, p);
    expect(io(v.run())).toMatchObject({ port: GUEST_VECTOR_PORT, value: 14 });
    expect(v.getSregs().cr2).toBe(0x4000_0008n);
  });

  it("an instruction outside the subset ends in KVM_EXIT_INTERNAL_ERROR with the reason recorded", () => {
    // 0x0f 0xa2 is CPUID (in the subset); 0x0f 0x31 is RDTSC (not in it)
    const p = longModeProgram((a) => a.raw([0x0f, 0x31], "rdtsc").insn(insn.hlt()));
    const v = boot(pvm, p);
    const e = v.run();
    expect(e.kind).toBe("internal-error");
    expect(e.kind === "internal-error" && e.suberror).toBe(KVM_INTERNAL_ERROR.EMULATION);
    expect(v.lastInternalError).toMatch(/outside the model's subset/);
  });

  it("a fresh vCPU fetches at the reset vector CS.base + IP = 0xfffffff0 (real mode)", () => {
    const vm = pvm.createVm();
    const v = vm.createVcpu(0);
    const high = vm.addMemory(0, 0xffff_0000n, 0x10000);
    const low = vm.addMemory(1, 0n, 0x10000);
    expect(v.mode).toBe("real");
    high.write(0xffff_fff0n, Uint8Array.of(0xf4)); // HLT
    expect(v.run().kind).toBe("hlt");
    expect(v.getRegs().rip).toBe(0xfff1n);
    // the same IP without the CS base holds bytes outside the subset: the model says so
    low.write(0xfff1n, Uint8Array.of(0x0f, 0x31));
    v.setSregs({ ...v.getSregs(), cs: { ...v.getSregs().cs, base: 0n } });
    expect(v.run().kind).toBe("internal-error");
    expect(v.lastInternalError).toMatch(/RIP 0xfff1 is outside the model's subset/);
  });

  it("immediate_exit returns KVM_EXIT_INTR without running the guest", () => {
    const v = boot(pvm, xsetbvProgram(0x7n));
    v.kvmRun[1] = 1;
    expect(v.run().kind).toBe("intr");
    expect(v.getXcrs().xcrs[0]!.value).toBe(1n);
  });
});

describe("guest XSETBV clearing XCR0.APX on the model device (ASSUMPTIONS.xcr0ApxDisable)", () => {
  // CPL 0: R16 = 0x1234, XSETBV 0xe7 (APX off), XSETBV 0x800e7 (APX on), RBX = R16, report, HLT.
  const xsetbv = (a: Assembler, x: bigint) =>
    a.insn(insn.movImm(1, 0n)).insn(insn.movImm(0, x & 0xffffffffn)).insn(insn.movImm(2, x >> 32n)).insn(insn.xsetbv());
  const toggle = longModeProgram((a) => {
    a.insn(insn.movImm(16, 0x1234n));
    xsetbv(a, 0xe7n);
    xsetbv(a, 0x800e7n);
    a.insn(insn.mov(3, 16)).movAl(9).insn(insn.outImm8(GUEST_REPORT_PORT)).insn(insn.hlt());
  });
  it.each([
    ["asm-conditional", "keep", 0x1234n],
    ["asm-conditional", "clear", 0n],
    ["fpstate", "keep", 0x1234n],
    ["fpstate", "clear", 0n],
  ] as const)("design %s, xcr0ApxDisable=%s: after APX off→on the guest reads R16 = %s (and KVM_GET_XSAVE2 agrees)", (design, mode, want) => {
    const kvm = new ModelKvm({ backend: vmxBackend, cpu: "dmr", design, options: { xcr0ApxDisable: mode } });
    const v = boot(kvm, toggle, 0x800e7n);
    expect(io(v.run())).toEqual({ port: GUEST_REPORT_PORT, value: 9, direction: "out", size: 1 });
    expect(v.getRegs().rbx).toBe(want);
    expect(new DataView(v.getXsave2().buffer).getBigUint64(960, true)).toBe(want);
  });
});
