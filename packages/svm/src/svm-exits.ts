/**
 * SVM's intercepts, svm_cache_reg, svm_exit_handlers_fastpath and the exit handlers the model's
 * guests reach (svm.c; FACTS.md §4, §6). Handlers decode the exit from the VMCB control area that
 * #VMEXIT filled, never from core's vendor-neutral GuestExit, so an encoding bug stays visible.
 */
import {
  FastpathResult, MSR_IA32_TSC_DEADLINE, gprRead, kvmEmulateCpuid, kvmEmulateXsetbv,
  kvmSkipEmulatedInstruction, markAvailable, readEdxEax,
  type ExitDisposition, type Instruction, type VcpuState, type VendorCtx,
} from "@kvmx/core";
import { SVM_EXIT, svmExitName, vmcbControl, vmcbSave } from "./vmcb.js";

/** The instructions the model's SVM guests are intercepted on (INTERCEPT_XSETBV/CPUID/HLT/IOIO_PROT/MSR_PROT). */
export function svmIntercepts(_v: VcpuState, insn: Instruction): boolean {
  switch (insn.op) {
    case "xsetbv":
    case "cpuid":
    case "hlt":
    case "out-imm8-al":
    case "out-dx-al":
    case "wrmsr":
    case "rdmsr":
    case "rdmsr-imm":
    case "wrmsrns-imm":
    case "vmcall":
      return true;
    default:
      return false;
  }
}

/** svm_cache_reg: PDPTR (NPT: from the guest's CR3 page, the model keeps them in pdptr[]); anything else is a bug. */
export function svmCacheReg(ctx: VendorCtx, reg: number): void {
  const v = ctx.vcpu;
  markAvailable(v, reg);
  if (reg === v.layout.PDPTR) {
    ctx.note("svm_cache_reg(PDPTR): load_pdptrs from guest CR3");
    return;
  }
  ctx.warn(`svm_cache_reg: unexpected register ${v.layout.name(reg)} (only PDPTR is lazily loaded on SVM)`);
}

const exitCode = (ctx: VendorCtx): bigint => vmcbControl(ctx.vcpu, "exit_code");

/**
 * svm_exit_handlers_fastpath: WRMSR to the TSC deadline (handle_fastpath_set_msr_irqoff) and HLT
 * (handle_fastpath_hlt), IRQs off, guest XCR0/XSS/PKRU still loaded.
 */
export function svmFastpath(ctx: VendorCtx): FastpathResult {
  const v = ctx.vcpu;
  const code = exitCode(ctx);
  const len = Number(vmcbControl(v, "insn_len"));
  if (code === BigInt(SVM_EXIT.MSR) && vmcbControl(v, "exit_info_1") === 1n) {
    const msr = Number(gprRead(v, 1) & 0xffff_ffffn);
    if (msr !== MSR_IA32_TSC_DEADLINE) return FastpathResult.NONE;
    v.msrs.set(msr, readEdxEax(v));
    kvmSkipEmulatedInstruction(ctx, len);
    ctx.note(`fastpath WRMSR 0x${msr.toString(16)} ← EDX:EAX`);
    return FastpathResult.REENTER_GUEST;
  }
  if (code === BigInt(SVM_EXIT.HLT)) {
    // kvm_emulate_halt skips HLT; with no event pending the vCPU blocks: the exit is handled.
    kvmSkipEmulatedInstruction(ctx, len);
    return FastpathResult.EXIT_HANDLED;
  }
  return FastpathResult.NONE;
}

/** svm_handle_exit_irqoff: nothing the model's exits need (INTR handled by the host's IRQ entry). */
export function svmHandleExitIrqoff(ctx: VendorCtx): void {
  if (exitCode(ctx) === BigInt(SVM_EXIT.INTR)) ctx.note("host interrupt handled");
}

/** svm_handle_exit → svm_exit_handlers[exit_code]. */
export function svmHandleExit(ctx: VendorCtx): ExitDisposition {
  const v = ctx.vcpu;
  const code = exitCode(ctx);
  if (ctx.fastpathResult === FastpathResult.EXIT_HANDLED) {
    // A halted vCPU blocks; with nothing to wake it, KVM_RUN returns to the VMM (as on VMX).
    return code === BigInt(SVM_EXIT.HLT) ? "userspace" : "handled";
  }
  const len = Number(vmcbControl(v, "insn_len"));
  switch (code) {
    case BigInt(SVM_EXIT.XSETBV): {
      // xsetbv_interception → kvm_emulate_xsetbv: #GP injected on failure, else skip.
      const out = kvmEmulateXsetbv(ctx, ctx.supportedXcr0, Number(vmcbSave(v, "cpl")));
      if (out.kind === "gp") {
        ctx.injectException("GP", len);
        ctx.note(`XSETBV 0x${out.value.toString(16)} → #GP${out.rule ? ` (${out.rule})` : ""}`);
      } else {
        kvmSkipEmulatedInstruction(ctx, len);
        ctx.note(`guest XCR0 = 0x${out.value.toString(16)}`);
      }
      return "handled";
    }
    case BigInt(SVM_EXIT.CPUID):
      kvmEmulateCpuid(ctx);
      kvmSkipEmulatedInstruction(ctx, len);
      return "handled";
    case BigInt(SVM_EXIT.HLT):
      kvmSkipEmulatedInstruction(ctx, len);
      return "userspace";
    case BigInt(SVM_EXIT.IOIO):
      // OUT to a port no in-kernel device claims: KVM_EXIT_IO. KVM skips the OUT when userspace re-enters
      // (complete_fast_pio_out); the model skips now — the guest cannot observe the difference.
      kvmSkipEmulatedInstruction(ctx, len);
      ctx.note(`KVM_EXIT_IO port 0x${(vmcbControl(v, "exit_info_1") >> 16n).toString(16)}`);
      return "userspace";
    case BigInt(SVM_EXIT.MSR): {
      const info = vmcbControl(v, "exit_info_1");
      if (info === 1n) {
        const msr = Number(gprRead(v, 1) & 0xffff_ffffn);
        v.msrs.set(msr, readEdxEax(v));
        kvmSkipEmulatedInstruction(ctx, len);
        return "handled";
      }
      ctx.warn(`MSR exit with EXITINFO1=${info}: AMD has no RDMSR/WRMSRNS-immediate forms`);
      return "userspace";
    }
    case BigInt(SVM_EXIT.NMI):
    case BigInt(SVM_EXIT.INTR):
      return "handled";
    case SVM_EXIT.ERR:
      ctx.note("VMRUN failed: KVM_EXIT_FAIL_ENTRY");
      return "userspace";
    default:
      ctx.warn(`unhandled ${svmExitName(code)}`);
      return "userspace";
  }
}
