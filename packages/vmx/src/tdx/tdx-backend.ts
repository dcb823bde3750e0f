/**
 * The TDX backend ("tdx", docs/facts.md#tdx): the TDX module owns the TD's registers; regs[] only
 * carries TDVMCALL arguments and results; after each TD exit regs_avail is limited to
 * TDX_REGS_AVAIL_SET and cache_reg is a WARN; XSETBV is not intercepted; XCR0/XSS follow the TD's XFAM
 * and KVM restores the host's (never loads the TD's). State ioctls fail with EINVAL through
 * `hasProtectedState`. Vendor event: tdx:hypercall {nr} — a KVM hypercall from the TD (TDVMCALL with
 * R10 = nr).
 */
import {
  FastpathResult, InputError, RunCtx, cpuidLookup, kvmRun, val, valLow, vid,
  type ExitDisposition, type GuestOp, type Instruction, type VcpuState, type VendorCtx, type VendorEvent, type VendorField, type VendorOps,
} from "@kvmx/core";
import { vmxIntercepts } from "../backend.js";
import { EXIT_REASON } from "../exit-reasons.js";
import { VMCS_FIELD, VMCS_FIELDS } from "../vmcs-fields.js";
import { ONE_ID, numId } from "../value-ids.js";
import { EXIT_REASON_TDCALL, TDX_STATE_FIELDS, TD_VMCALL_FIELD, tdxRegsAvailSet, tdxRunSites } from "./tdx-run.js";
import { KVM_ENOSYS, R, TDVMCALL_LEAF, TDVMCALL_STATUS_ID, tdvmcallLeaf, tdvmcallSetReturn } from "./tdvmcall.js";

/** Every vendor field the TDX backend's vCPUs have (VMX's VMCS fields: the TD exit reason is VMX's). */
export const TDX_FIELDS: readonly VendorField[] = [...VMCS_FIELDS, ...TDX_STATE_FIELDS];

/**
 * What a TD cannot run without the VMM: the instructions VMX intercepts, less XSETBV, which the TD
 * executes itself (XCR0 is module-owned within XFAM, docs/facts.md#tdx-xfam).
 */
export function tdxIntercepts(v: VcpuState, i: Instruction): boolean {
  return i.op !== "xsetbv" && vmxIntercepts(v, i);
}

/** tdx_cache_reg: nothing of the TD's state is readable — always a WARN (the register stays unavailable). */
export function tdxCacheReg(ctx: VendorCtx, reg: number): void {
  ctx.warn(`cache_reg(${ctx.vcpu.layout.name(reg)}) for a TD: the TDX module owns the TD's registers`);
}

/** The hypercall's registers: R10..R14 → RAX, RBX, RCX, RDX, RSI. */
const HYPERCALL_FROM: readonly number[] = [R.R10, R.R11, R.R12, R.R13, R.R14];
const HYPERCALL_TO: readonly number[] = [R.RAX, R.RBX, R.RCX, R.RDX, R.RSI];
const ENOSYS_ID = vid(BigInt.asUintN(64, -KVM_ENOSYS));

/** tdx_emulate_vmcall: R10..R14 → RAX, RBX, RCX, RDX, RSI; kvm_emulate_hypercall; RAX → R10. */
function tdxEmulateVmcall(ctx: VendorCtx): void {
  const regs = ctx.vcpu.regs;
  for (let i = 0; i < HYPERCALL_FROM.length; i++) {
    const s = HYPERCALL_FROM[i]!;
    regs.setId(HYPERCALL_TO[i]!, regs.id(s), regs.tag(s));
  }
  const nr = regs.id(R.RAX);
  // The model implements no KVM hypercall: every number gets -KVM_ENOSYS, as an unknown one does.
  regs.setId(R.RAX, ENOSYS_ID, ctx.guestTag);
  tdvmcallSetReturn(ctx, regs.id(R.RAX));
  if (ctx.tracing) ctx.note(`KVM hypercall ${val(nr)}: R10..R14 → RAX..RSI, result -KVM_ENOSYS → R10`);
}

/** handle_tdvmcall for the leaves the model's TDs use. */
function handleTdvmcall(ctx: VendorCtx): ExitDisposition {
  const v = ctx.vcpu;
  const regs = v.regs;
  v.vendorSetId(TD_VMCALL_FIELD["td.vmcall_pending"], ONE_ID);
  // tdvmcall_exit_type(vcpu) != 0: a KVM hypercall (id 0 is value 0).
  if (regs.id(R.R10) !== 0) {
    tdxEmulateVmcall(ctx);
    return "handled";
  }
  const leaf = tdvmcallLeaf(v);
  switch (leaf) {
    case TDVMCALL_LEAF.CPUID: {
      const r = cpuidLookup(ctx.guestCpuid, valLow(regs.id(R.R12)), valLow(regs.id(R.R13)));
      regs.setId(R.R12, numId(r.eax), ctx.guestTag);
      regs.setId(R.R13, numId(r.ebx), ctx.guestTag);
      regs.setId(R.R14, numId(r.ecx), ctx.guestTag);
      regs.setId(R.R15, numId(r.edx), ctx.guestTag);
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS_ID.SUCCESS);
      ctx.note("TDVMCALL CPUID: R12/R13 in, R12..R15 out");
      return "handled";
    }
    case TDVMCALL_LEAF.IO:
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS_ID.SUCCESS);
      if (ctx.tracing) ctx.note(`TDVMCALL IO: KVM_EXIT_IO port 0x${regs.get(R.R14).toString(16)}, data 0x${regs.get(R.R15).toString(16)} (from R15)`);
      return "userspace";
    case TDVMCALL_LEAF.HLT:
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS_ID.SUCCESS);
      return "userspace";
    case TDVMCALL_LEAF.WRMSR: {
      const msr = valLow(regs.id(R.R12));
      v.msrs.set(msr, regs.get(R.R13));
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS_ID.SUCCESS);
      if (ctx.tracing) ctx.note(`TDVMCALL WRMSR 0x${msr.toString(16)} ← R13`);
      return "handled";
    }
    case TDVMCALL_LEAF.RDMSR: {
      const msr = valLow(regs.id(R.R12));
      const value = v.msrs.get(msr);
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS_ID.SUCCESS, value === undefined ? 0 : vid(value));
      if (ctx.tracing) ctx.note(`TDVMCALL RDMSR 0x${msr.toString(16)} → R11`);
      return "handled";
    }
    default:
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS_ID.INVALID_OPERAND);
      ctx.warn(`TDVMCALL leaf ${leaf} not handled by the model`);
      return "handled";
  }
}

export function tdxHandleExit(ctx: VendorCtx): ExitDisposition {
  const reason = valLow(ctx.vcpu.vendorId(VMCS_FIELD.VM_EXIT_REASON)) & 0xffff;
  switch (reason) {
    case EXIT_REASON_TDCALL:
      return handleTdvmcall(ctx);
    case EXIT_REASON.EXCEPTION_NMI:
    case EXIT_REASON.EXTERNAL_INTERRUPT:
      return "handled";
    default:
      ctx.warn(`tdx_handle_exit: unexpected exit reason ${reason}`);
      return "userspace";
  }
}

export const TDX_EVENT_KINDS = ["tdx:hypercall"] as const;
const TDX_EVENTS: readonly VendorEvent[] = [{ kind: "tdx:hypercall", nr: 1 }];
/** A hypercall event runs no guest instruction: the TD's #VE handler issues the TDVMCALL at the exit. */
const NO_PROGRAM: readonly GuestOp[] = [];

export const tdxBackend: VendorOps = {
  name: "tdx",
  description: "Intel TDX: the TDX module owns the TD's registers (TDVPS); regs[] carries TDVMCALL arguments; XCR0 from XFAM, host XCR0 restored by KVM after each TD exit",
  xfeatureSwitch: "module",
  vendorFields: TDX_FIELDS,
  hasProtectedState: () => true,
  adjustSupportedXcr0: (x) => x,
  lazyAvailMask: (l) => l.allMask & ~tdxRegsAvailSet(l),
  intercepts: tdxIntercepts,
  cacheReg: tdxCacheReg,
  runSites: () => TDX_SITES,
  fastpath: () => FastpathResult.NONE,
  handleExitIrqoff: () => undefined,
  handleExit: tdxHandleExit,
  vendorEvents: (): readonly VendorEvent[] => TDX_EVENTS,
  applyVendorEvent(ctx, e) {
    if (e.kind !== "tdx:hypercall") throw new InputError(`event kind "${e.kind}" is unknown to backend tdx (known: ${TDX_EVENT_KINDS.join(", ")})`);
    if (!(ctx instanceof RunCtx)) throw new InputError("tdx:hypercall needs core's RunCtx");
    const nr = e.nr ?? 1;
    if (typeof nr !== "number" || !Number.isInteger(nr) || nr <= 0) throw new InputError(`tdx:hypercall nr must be a positive integer (R10 ≠ 0), got ${String(nr)}`);
    ctx.vcpu.vendorSet(TD_VMCALL_FIELD["td.pending_hypercall"], BigInt(nr));
    ctx.program = NO_PROGRAM;
    kvmRun(ctx);
  },
};

const TDX_SITES = tdxRunSites();
