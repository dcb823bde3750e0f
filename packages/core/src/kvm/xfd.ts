/**
 * IA32_XFD and the guest fpstate (feature xfd, docs/facts.md#xfd): the guest's WRMSR(IA32_XFD) is
 * emulated by fpu_update_guest_xfd, whose steps a variant can edit (sequence "fpu-update-guest-xfd"):
 * since b45f72177594 it first drops the newly disarmed components from the saved XSTATE_BV when the
 * registers are not in hardware (TIF_NEED_FPU_LOAD), then stores XFD (and loads it when the fpstate is
 * in use). KVM_SET_XSAVE likewise drops components disarmed in the guest's XFD ("set-xsave").
 */
import { val, vid } from "../cpu/values.js";
import { XFEATURE_MASK } from "../cpu/xfeatures.js";
import { FEATURE_BIT } from "./features.js";
import { gprRead, readEdxEax } from "./register-cache.js";
import { MSR_IA32_XFD, MSR_IA32_XFD_ERR, guestXfdId, setGuestXfdErrId, setGuestXfdId } from "./feature-state.js";
import type { RunCtx } from "./run-context.js";
import type { VendorCtx } from "./vendor-ops.js";
import { kvmSkipEmulatedInstruction } from "./emulate.js";
import { vcpuGuestSupportedXcr0 } from "./xcr.js";

/** XFEATURE_MASK_USER_DYNAMIC: the only components XFD may disarm (AMX tile data). */
const USER_DYNAMIC = XFEATURE_MASK.XTILE_DATA;

/**
 * The arguments of the two sequences while their steps run (they run synchronously inside one handler):
 * the XFD value fpu_update_guest_xfd stores, and the XSTATE_BV KVM_SET_XSAVE is about to apply.
 */
let pendingXfd = 0;

/** Step x86:xfd-drop-saved-components: with the registers saved (TIF_NEED_FPU_LOAD), XSTATE_BV &= ~xfd. */
export function xfdDropSavedComponents(ctx: RunCtx): void {
  if (pendingXfd === 0 || !ctx.needFpuLoad) return;
  const f = ctx.vcpu.fpstate;
  const bv = f.xstateBv & ~val(pendingXfd);
  if (bv !== f.xstateBv) {
    f.xstateBv = bv;
    if (ctx.tracing) ctx.note(`saved XSTATE_BV loses the components XFD disarms (0x${bv.toString(16)})`);
  }
}

/** Step x86:xfd-update-state: fpstate->xfd = xfd; while the guest fpstate is in use, IA32_XFD too (xfd_update_state). */
export function xfdUpdateState(ctx: RunCtx): void {
  setGuestXfdId(ctx.vcpu, pendingXfd);
  if (ctx.guestFpuLoaded) ctx.cpu.xfdId = pendingXfd;
  if (ctx.tracing) ctx.note(`guest XFD = 0x${val(pendingXfd).toString(16)}`);
}

/**
 * kvm_set_msr_common for IA32_XFD / IA32_XFD_ERR from a guest WRMSR (ECX, EDX:EAX): #GP for bits outside
 * XFEATURE_MASK_USER_DYNAMIC ∩ guest-supported XCR0; XFD goes through fpu_update_guest_xfd. Returns
 * false for other MSRs (the caller's business).
 */
export function kvmSetXfdMsr(ctx: VendorCtx, length: number): boolean {
  const v = ctx.vcpu;
  const msr = Number(gprRead(v, 1) & 0xffff_ffffn);
  if (msr !== MSR_IA32_XFD && msr !== MSR_IA32_XFD_ERR) return false;
  const data = readEdxEax(v);
  const allowed = USER_DYNAMIC & vcpuGuestSupportedXcr0(v, ctx.supportedXcr0);
  if ((data & ~allowed) !== 0n) {
    ctx.injectException("GP", length);
    return true;
  }
  if (msr === MSR_IA32_XFD_ERR) setGuestXfdErrId(v, vid(data));
  else {
    pendingXfd = vid(data);
    (ctx as RunCtx).runSequence("fpu-update-guest-xfd");
    pendingXfd = 0;
  }
  kvmSkipEmulatedInstruction(ctx, length);
  return true;
}

let setXsaveBv = 0n;

/** Step x86:set-xsave-drop-xfd: KVM_SET_XSAVE's XSTATE_BV &= ~guest XFD. */
export function setXsaveDropXfd(ctx: RunCtx): void {
  const xfd = guestXfdId(ctx.vcpu);
  if (xfd === 0) return;
  const bv = setXsaveBv & ~val(xfd);
  if (bv !== setXsaveBv && ctx.tracing) ctx.note(`XSTATE_BV 0x${setXsaveBv.toString(16)} → 0x${bv.toString(16)}: components disarmed in XFD dropped`);
  setXsaveBv = bv;
}
/** Runs the "set-xsave" steps on the XSTATE_BV KVM_SET_XSAVE is about to apply and returns what they leave. */
export function setXsaveSteps(ctx: RunCtx, bv: bigint): bigint {
  setXsaveBv = bv;
  ctx.runSequence("set-xsave");
  return setXsaveBv;
}

/**
 * Feature xstate: the guest fpstate's XSTATE_BV takes KVM_SET_XSAVE's for every component it holds
 * (copy_uabi_to_xstate), not only component 19 — what its next XRSTOR sees.
 */
export function setXsaveTrackBv(ctx: RunCtx, bv: bigint): void {
  if ((ctx.features & FEATURE_BIT.xstate) === 0) return;
  const f = ctx.vcpu.fpstate;
  f.xstateBv = (bv & f.features & ~(XFEATURE_MASK.PKRU | XFEATURE_MASK.APX)) | (f.xstateBv & XFEATURE_MASK.APX);
}
