/**
 * SVM's intercepts, svm_cache_reg, svm_exit_handlers_fastpath and the exit handlers the model's guests reach
 * (svm.c; docs/facts.md#svm-run, docs/facts.md#xsetbv). Handlers decode the exit from the VMCB control area
 * that #VMEXIT filled, never from core's vendor-neutral GuestExit, so an encoding bug stays visible.
 */
import {
  FastpathResult, MSR_IA32_TSC_DEADLINE, kvmEmulateCpuid, kvmEmulateXsetbv,
  kvmSkipEmulatedInstruction, markAvailable, readEdxEax, val, valLow, vid,
  type ExitDisposition, type Instruction, type VcpuState, type VendorCtx,
} from "@kvmx/core";
import { SVM_EXIT_ID, VMCB_FIELD, portHex, svmExitNameOf } from "./vmcb.js";

const EXIT_CODE = VMCB_FIELD["vmcb.control.exit_code"];
const EXIT_INFO_1 = VMCB_FIELD["vmcb.control.exit_info_1"];
const INSN_LEN = VMCB_FIELD["vmcb.control.insn_len"];
const CPL = VMCB_FIELD["vmcb.save.cpl"];
/** EXITINFO1 of a WRMSR exit. */
const WRMSR_INFO = vid(1n);

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

const exitCode = (ctx: VendorCtx): number => ctx.vcpu.vendorId(EXIT_CODE);

/**
 * svm_exit_handlers_fastpath: WRMSR to the TSC deadline (handle_fastpath_set_msr_irqoff) and HLT
 * (handle_fastpath_hlt), IRQs off, guest XCR0/XSS/PKRU still loaded.
 */
export function svmFastpath(ctx: VendorCtx): FastpathResult {
  const v = ctx.vcpu;
  const code = exitCode(ctx);
  const len = valLow(v.vendorId(INSN_LEN));
  if (code === SVM_EXIT_ID.MSR && v.vendorId(EXIT_INFO_1) === WRMSR_INFO) {
    const msr = valLow(v.regs.id(1));
    if (msr !== MSR_IA32_TSC_DEADLINE) return FastpathResult.NONE;
    v.msrs.set(msr, readEdxEax(v));
    kvmSkipEmulatedInstruction(ctx, len);
    if (ctx.tracing) ctx.note(`fastpath WRMSR 0x${msr.toString(16)} ← EDX:EAX`);
    return FastpathResult.REENTER_GUEST;
  }
  if (code === SVM_EXIT_ID.HLT) {
    // kvm_emulate_halt skips HLT; with no event pending the vCPU blocks: the exit is handled.
    kvmSkipEmulatedInstruction(ctx, len);
    return FastpathResult.EXIT_HANDLED;
  }
  return FastpathResult.NONE;
}

/** svm_handle_exit_irqoff: nothing the model's exits need (INTR handled by the host's IRQ entry). */
export function svmHandleExitIrqoff(ctx: VendorCtx): void {
  if (exitCode(ctx) === SVM_EXIT_ID.INTR) ctx.note("host interrupt handled");
}

/** svm_handle_exit → svm_exit_handlers[exit_code]. */
export function svmHandleExit(ctx: VendorCtx): ExitDisposition {
  const v = ctx.vcpu;
  const code = exitCode(ctx);
  if (ctx.fastpathResult === FastpathResult.EXIT_HANDLED) {
    // A halted vCPU blocks; with nothing to wake it, KVM_RUN returns to the VMM (as on VMX).
    return code === SVM_EXIT_ID.HLT ? "userspace" : "handled";
  }
  const len = valLow(v.vendorId(INSN_LEN));
  switch (code) {
    case SVM_EXIT_ID.XSETBV: {
      // xsetbv_interception → kvm_emulate_xsetbv: #GP injected on failure, else skip.
      const out = kvmEmulateXsetbv(ctx, ctx.supportedXcr0, valLow(v.vendorId(CPL)));
      if (out.kind === "gp") {
        ctx.injectException("GP", len);
        if (ctx.tracing) ctx.note(`XSETBV 0x${out.value.toString(16)} → #GP${out.rule ? ` (${out.rule})` : ""}`);
      } else {
        kvmSkipEmulatedInstruction(ctx, len);
        if (ctx.tracing) ctx.note(`guest XCR0 = 0x${out.value.toString(16)}`);
      }
      return "handled";
    }
    case SVM_EXIT_ID.CPUID:
      kvmEmulateCpuid(ctx);
      kvmSkipEmulatedInstruction(ctx, len);
      return "handled";
    case SVM_EXIT_ID.HLT:
      kvmSkipEmulatedInstruction(ctx, len);
      return "userspace";
    case SVM_EXIT_ID.IOIO:
      // OUT to a port no in-kernel device claims: KVM_EXIT_IO. KVM skips the OUT when userspace re-enters
      // (complete_fast_pio_out); the model skips now — the guest cannot observe the difference.
      kvmSkipEmulatedInstruction(ctx, len);
      if (ctx.tracing) ctx.note(`KVM_EXIT_IO port 0x${portHex(v.vendorId(EXIT_INFO_1))}`);
      return "userspace";
    case SVM_EXIT_ID.MSR: {
      const info = v.vendorId(EXIT_INFO_1);
      if (info === WRMSR_INFO) {
        const msr = valLow(v.regs.id(1));
        v.msrs.set(msr, readEdxEax(v));
        kvmSkipEmulatedInstruction(ctx, len);
        return "handled";
      }
      ctx.warn(`MSR exit with EXITINFO1=${val(info)}: AMD has no RDMSR/WRMSRNS-immediate forms`);
      return "userspace";
    }
    case SVM_EXIT_ID.NMI:
    case SVM_EXIT_ID.INTR:
      return "handled";
    case SVM_EXIT_ID.ERR:
      ctx.note("VMRUN failed: KVM_EXIT_FAIL_ENTRY");
      return "userspace";
    default:
      ctx.warn(`unhandled ${svmExitNameOf(code)}`);
      return "userspace";
  }
}
