/**
 * VMX exit handling (docs/facts.md#vmx-fastpath, docs/facts.md#msr-imm): the fastpath (IRQs off, guest XCR0
 * still live) for WRMSRNS immediate and WRMSR to IA32_TSC_DEADLINE, HLT and the preemption timer; then the
 * full handlers for XSETBV, CPUID, HLT, I/O and the MSR forms. Registers named by an exit are decoded from the
 * VMCS: the 5-bit reg1 of EXTENDED_INSTRUCTION_INFO when the CPU has APX, the 4-bit legacy field otherwise.
 */
import {
  valLow,
  FastpathResult, FASTPATH_MSRS, kvmEmulateCpuid, kvmEmulateRdmsrImm, kvmEmulateXsetbv, kvmSetMsrFromReg,
  kvmSkipEmulatedInstruction, readEdxEax, kvmHandleDrAccess, kvmSetXfdMsr,
  type ExitDisposition, type VendorCtx,
} from "@kvmx/core";
import { vmcsRead, vmcsReadId } from "./vmcs-fields.js";
import { EXIT_REASON, exitReasonName } from "./exit-reasons.js";
import { decodeExtendedInfo, decodeLegacyInfo } from "./instruction-info.js";

const exitReason = (ctx: VendorCtx): number => valLow(vmcsReadId(ctx.vcpu, "VM_EXIT_REASON")) & 0xffff;
const exitLen = (ctx: VendorCtx): number => valLow(vmcsReadId(ctx.vcpu, "VM_EXIT_INSTRUCTION_LEN"));
/** The exit qualification's low 32 bits (the MSR index of the MSR-immediate exits). */
const qualLow = (ctx: VendorCtx): number => valLow(vmcsReadId(ctx.vcpu, "EXIT_QUALIFICATION"));

/** The data register of an MSR-immediate exit: reg1 of the extended field (APX CPUs) or the legacy one. */
export function msrImmRegister(ctx: VendorCtx): number {
  return ctx.cpuApx
    ? decodeExtendedInfo(vmcsRead(ctx.vcpu, "EXTENDED_INSTRUCTION_INFO")).reg1
    : decodeLegacyInfo(vmcsRead(ctx.vcpu, "VMX_INSTRUCTION_INFO")).reg1;
}

/** vmx_exit_handlers_fastpath. */
export function vmxFastpath(ctx: VendorCtx): FastpathResult {
  const reason = exitReason(ctx);
  switch (reason) {
    case EXIT_REASON.MSR_WRITE_IMM: {
      // handle_fastpath_wrmsr_imm: the data register is read with kvm_register_read — an EGPR with APX.
      const msr = qualLow(ctx);
      if (!FASTPATH_MSRS.includes(msr)) return FastpathResult.NONE;
      kvmSetMsrFromReg(ctx, msr, msrImmRegister(ctx));
      kvmSkipEmulatedInstruction(ctx, exitLen(ctx));
      return FastpathResult.REENTER_GUEST;
    }
    case EXIT_REASON.MSR_WRITE: {
      const msr = Number(ctx.vcpu.regs.get(1) & 0xffff_ffffn);
      if (!FASTPATH_MSRS.includes(msr)) return FastpathResult.NONE;
      ctx.vcpu.msrs.set(msr, readEdxEax(ctx.vcpu));
      kvmSkipEmulatedInstruction(ctx, exitLen(ctx));
      return FastpathResult.REENTER_GUEST;
    }
    case EXIT_REASON.HLT:
      // handle_fastpath_hlt: no pending event in the model → the vCPU halts (EXIT_HANDLED).
      kvmSkipEmulatedInstruction(ctx, exitLen(ctx));
      return FastpathResult.EXIT_HANDLED;
    case EXIT_REASON.PREEMPTION_TIMER:
      return FastpathResult.EXIT_HANDLED;
    default:
      return FastpathResult.NONE;
  }
}

/** vmx_handle_exit: the full handlers (host XCR0 loaded, IRQs on). */
export function vmxHandleExit(ctx: VendorCtx): ExitDisposition {
  if (ctx.vmFailed) {
    // vmx->fail: KVM_EXIT_FAIL_ENTRY to userspace with the VM-instruction error.
    ctx.note("VM-Fail: KVM_EXIT_FAIL_ENTRY");
    return "userspace";
  }
  const reason = exitReason(ctx);
  if (ctx.fastpathResult === FastpathResult.EXIT_HANDLED) {
    // A halted vCPU blocks; with nothing to wake it, KVM_RUN returns to the VMM (signal pending).
    return reason === EXIT_REASON.HLT ? "userspace" : "handled";
  }
  switch (reason) {
    case EXIT_REASON.EXCEPTION_NMI:
      return "handled";
    case EXIT_REASON.XSETBV: {
      const out = kvmEmulateXsetbv(ctx, ctx.supportedXcr0, 0);
      if (out.kind === "ok") {
        if (ctx.tracing) ctx.note(`guest XCR0 = 0x${out.value.toString(16)}`);
        kvmSkipEmulatedInstruction(ctx, exitLen(ctx));
      } else {
        if (ctx.tracing) ctx.note(`__kvm_set_xcr rejects 0x${out.value.toString(16)}${out.rule ? ` (${out.rule})` : ""}`);
        ctx.injectException("GP", exitLen(ctx));
      }
      return "handled";
    }
    case EXIT_REASON.CPUID:
      kvmEmulateCpuid(ctx);
      kvmSkipEmulatedInstruction(ctx, exitLen(ctx));
      return "handled";
    case EXIT_REASON.HLT:
      kvmSkipEmulatedInstruction(ctx, exitLen(ctx));
      return "userspace";
    case EXIT_REASON.IO_INSTRUCTION:
      kvmSkipEmulatedInstruction(ctx, exitLen(ctx));
      if (ctx.tracing) ctx.note(`KVM_EXIT_IO port 0x${(vmcsRead(ctx.vcpu, "EXIT_QUALIFICATION") >> 16n).toString(16)}`);
      return "userspace";
    case EXIT_REASON.MSR_READ_IMM: {
      const msr = qualLow(ctx);
      kvmEmulateRdmsrImm(ctx, msr, msrImmRegister(ctx));
      kvmSkipEmulatedInstruction(ctx, exitLen(ctx));
      return "handled";
    }
    case EXIT_REASON.MSR_WRITE_IMM: {
      const msr = qualLow(ctx);
      kvmSetMsrFromReg(ctx, msr, msrImmRegister(ctx));
      kvmSkipEmulatedInstruction(ctx, exitLen(ctx));
      return "handled";
    }
    case EXIT_REASON.PREEMPTION_TIMER:
      return "handled";
    case EXIT_REASON.DR_ACCESS:
      // handle_dr: userspace does not debug the guest here, so KVM stops intercepting (feature dr6).
      return kvmHandleDrAccess(ctx);
    case EXIT_REASON.MSR_WRITE:
      // kvm_emulate_wrmsr: the model emulates IA32_XFD/IA32_XFD_ERR (feature xfd); other MSRs stay unexpected.
      if (ctx.features !== 0 && kvmSetXfdMsr(ctx, exitLen(ctx))) return "handled";
      ctx.warn(`vmx_handle_exit: unexpected exit reason ${exitReasonName(reason)}`);
      return "userspace";
    default:
      ctx.warn(`vmx_handle_exit: unexpected exit reason ${exitReasonName(reason)}`);
      return "userspace";
  }
}
