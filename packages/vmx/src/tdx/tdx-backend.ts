/**
 * The TDX backend ("tdx", FACTS.md §5): the TDX module owns the TD's registers; regs[] only carries
 * TDVMCALL arguments and results; after each TD exit regs_avail is limited to TDX_REGS_AVAIL_SET and
 * cache_reg is a WARN; XSETBV is not intercepted; XCR0/XSS follow the TD's XFAM and KVM restores the
 * host's (never loads the TD's). State ioctls fail with EINVAL through `hasProtectedState`.
 * Vendor event: tdx:hypercall {nr} — a KVM hypercall from the TD (TDVMCALL with R10 = nr).
 */
import {
  FastpathResult, InputError, RunCtx, cpuidLookup, gprRead, gprWrite, kvmRun,
  type ExitDisposition, type Instruction, type VcpuState, type VendorCtx, type VendorEvent, type VendorOps,
} from "@kvmx/core";
import { vmxIntercepts } from "../backend.js";
import { EXIT_REASON } from "../exit-reasons.js";
import { vmcsRead } from "../vmcs-fields.js";
import { EXIT_REASON_TDCALL, tdxRegsAvailSet, tdxRunSites } from "./tdx-run.js";
import { KVM_ENOSYS, R, TDVMCALL_LEAF, TDVMCALL_STATUS, tdvmcallExitType, tdvmcallLeaf, tdvmcallSetReturn } from "./tdvmcall.js";

/**
 * What a TD cannot run without the VMM: the instructions VMX intercepts, less XSETBV, which the TD
 * executes itself (XCR0 is module-owned within XFAM, FACTS.md §5–§6).
 */
export function tdxIntercepts(v: VcpuState, i: Instruction): boolean {
  return i.op !== "xsetbv" && vmxIntercepts(v, i);
}

/** tdx_cache_reg: nothing of the TD's state is readable — always a WARN (the register stays unavailable). */
export function tdxCacheReg(ctx: VendorCtx, reg: number): void {
  ctx.warn(`cache_reg(${ctx.vcpu.layout.name(reg)}) for a TD: the TDX module owns the TD's registers`);
}

/** tdx_emulate_vmcall: R10..R14 → RAX, RBX, RCX, RDX, RSI; kvm_emulate_hypercall; RAX → R10. */
function tdxEmulateVmcall(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const src = [R.R10, R.R11, R.R12, R.R13, R.R14];
  const dst = [R.RAX, R.RBX, R.RCX, R.RDX, R.RSI];
  src.forEach((s, i) => gprWrite(v, dst[i]!, gprRead(v, s), v.regsTag[s]!));
  const nr = gprRead(v, R.RAX);
  // The model implements no KVM hypercall: every number gets -KVM_ENOSYS, as an unknown one does.
  gprWrite(v, R.RAX, BigInt.asUintN(64, -KVM_ENOSYS), ctx.guestTag);
  tdvmcallSetReturn(ctx, gprRead(v, R.RAX));
  ctx.note(`KVM hypercall ${nr}: R10..R14 → RAX..RSI, result -KVM_ENOSYS → R10`);
}

/** handle_tdvmcall for the leaves the model's TDs use. */
function handleTdvmcall(ctx: VendorCtx): ExitDisposition {
  const v = ctx.vcpu;
  v.vendor["td.vmcall_pending"] = 1n;
  if (tdvmcallExitType(v) !== 0n) {
    tdxEmulateVmcall(ctx);
    return "handled";
  }
  const leaf = tdvmcallLeaf(v);
  switch (leaf) {
    case TDVMCALL_LEAF.CPUID: {
      const r = cpuidLookup(ctx.guestCpuid, Number(gprRead(v, R.R12) & 0xffff_ffffn), Number(gprRead(v, R.R13) & 0xffff_ffffn));
      [r.eax, r.ebx, r.ecx, r.edx].forEach((x, i) => gprWrite(v, R.R12 + i, BigInt(x >>> 0), ctx.guestTag));
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS.SUCCESS);
      ctx.note("TDVMCALL CPUID: R12/R13 in, R12..R15 out");
      return "handled";
    }
    case TDVMCALL_LEAF.IO:
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS.SUCCESS);
      ctx.note(`TDVMCALL IO: KVM_EXIT_IO port 0x${gprRead(v, R.R14).toString(16)}, data 0x${gprRead(v, R.R15).toString(16)} (from R15)`);
      return "userspace";
    case TDVMCALL_LEAF.HLT:
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS.SUCCESS);
      return "userspace";
    case TDVMCALL_LEAF.WRMSR: {
      const msr = Number(gprRead(v, R.R12) & 0xffff_ffffn);
      v.msrs.set(msr, gprRead(v, R.R13));
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS.SUCCESS);
      ctx.note(`TDVMCALL WRMSR 0x${msr.toString(16)} ← R13`);
      return "handled";
    }
    case TDVMCALL_LEAF.RDMSR: {
      const msr = Number(gprRead(v, R.R12) & 0xffff_ffffn);
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS.SUCCESS, v.msrs.get(msr) ?? 0n);
      ctx.note(`TDVMCALL RDMSR 0x${msr.toString(16)} → R11`);
      return "handled";
    }
    default:
      tdvmcallSetReturn(ctx, TDVMCALL_STATUS.INVALID_OPERAND);
      ctx.warn(`TDVMCALL leaf ${leaf} not handled by the model`);
      return "handled";
  }
}

export function tdxHandleExit(ctx: VendorCtx): ExitDisposition {
  const reason = Number(vmcsRead(ctx.vcpu, "VM_EXIT_REASON") & 0xffffn);
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

export const tdxBackend: VendorOps = {
  name: "tdx",
  description: "Intel TDX: the TDX module owns the TD's registers (TDVPS); regs[] carries TDVMCALL arguments; XCR0 from XFAM, host XCR0 restored by KVM after each TD exit",
  xfeatureSwitch: "module",
  hasProtectedState: () => true,
  adjustSupportedXcr0: (x) => x,
  lazyAvailMask: (l) => l.allMask & ~tdxRegsAvailSet(l),
  intercepts: tdxIntercepts,
  cacheReg: tdxCacheReg,
  runSites: () => TDX_SITES,
  fastpath: () => FastpathResult.NONE,
  handleExitIrqoff: () => undefined,
  handleExit: tdxHandleExit,
  vendorEvents: (): readonly VendorEvent[] => [{ kind: "tdx:hypercall", nr: 1 }],
  applyVendorEvent(ctx, e) {
    if (e.kind !== "tdx:hypercall") throw new InputError(`event kind "${e.kind}" is unknown to backend tdx (known: ${TDX_EVENT_KINDS.join(", ")})`);
    if (!(ctx instanceof RunCtx)) throw new InputError("tdx:hypercall needs core's RunCtx");
    const nr = e.nr ?? 1;
    if (typeof nr !== "number" || !Number.isInteger(nr) || nr <= 0) throw new InputError(`tdx:hypercall nr must be a positive integer (R10 ≠ 0), got ${String(nr)}`);
    ctx.vcpu.vendor["td.pending_hypercall"] = BigInt(nr);
    ctx.program = [];
    kvmRun(ctx);
  },
};

const TDX_SITES = tdxRunSites();
