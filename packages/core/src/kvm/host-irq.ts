/**
 * The host around a running vCPU (features host-irq, sched-out, machine-check, xfd; docs/facts.md#host-irq,
 * #sched-out, #machine-check): the FPU core's view of who owns the FPU registers (the guest fpstate
 * between kvm_load_guest_fpu and kvm_put_guest_fpu, the VMM task's otherwise) and TIF_NEED_FPU_LOAD;
 * a host interrupt whose handler uses kernel_fpu_begin; the vCPU thread scheduled out (vcpu_put,
 * switch_to another task and back, vcpu_load); a machine check whose handler schedules. Every XSAVE
 * and XRSTOR goes through the executor under the XCR0 and IA32_XFD live at that moment — which is
 * what the known bugs get wrong.
 */
import { Tag } from "../cpu/provenance.js";
import { val, vid } from "../cpu/values.js";
import { XFEATURE_MASK } from "../cpu/xfeatures.js";
import { FEATURE_BIT } from "./features.js";
import { guestXfdId, guestXfdErrId } from "./feature-state.js";
import { OTHER_TASK_EGPR } from "./host-values.js";
import { HOST_ADDR } from "./host-values.js";
import type { RunCtx } from "./run-context.js";
import { fpstateOp } from "./sites.js";

const GUEST_FP_ID = vid(HOST_ADDR.guestFpstate);
const USER_FP_ID = vid(HOST_ADDR.userFpstate);
/** The other task's fpstate buffer (the task switch_to runs while the vCPU thread is out). */
const OTHER_FP = 0xffff_8880_0050_0000n;
const OTHER_FP_ID = vid(OTHER_FP);
const OTHER_TASK_EGPR_ID = Array.from({ length: 16 }, (_, i) => vid(OTHER_TASK_EGPR(i)));

/** The fpstate that owns the FPU registers now, and the features its buffer holds (an id). */
function owner(ctx: RunCtx): { base: number; mask: number; xfd: number } {
  if (ctx.guestFpuLoaded) {
    const v = ctx.vcpu;
    return { base: GUEST_FP_ID, mask: v.protectedState ? 0 : v.fpstate.featuresId, xfd: guestXfdId(v) };
  }
  return { base: USER_FP_ID, mask: ctx.cfg.hostFpstateMaskId, xfd: 0 };
}

/** xfd_update_state: IA32_XFD follows the fpstate about to be restored (modelled when XFD is). */
function setXfd(ctx: RunCtx, id: number): void {
  if (ctx.features & FEATURE_BIT.xfd) ctx.cpu.xfdId = id;
}

/**
 * kvm_load_guest_fpu → fpu_swap_kvm_fpstate(guest, true) with the FPU core's rules: the task's registers
 * are saved unless TIF_NEED_FPU_LOAD says they already are, XFD switches to the guest's, then the guest
 * fpstate is restored (restore_fpregs_from_fpstate).
 */
export function loadGuestFpuSwap(ctx: RunCtx): void {
  if (!ctx.needFpuLoad) fpstateOp(ctx, "xsave", USER_FP_ID, ctx.cfg.hostFpstateMaskId);
  const v = ctx.vcpu;
  setXfd(ctx, guestXfdId(v));
  fpstateOp(ctx, "xrstor", GUEST_FP_ID, v.protectedState ? 0 : v.fpstate.featuresId);
  ctx.needFpuLoad = false;
  ctx.guestFpuLoaded = true;
  if (ctx.tracing) ctx.note(`guest fpstate loaded (features 0x${v.fpstate.features.toString(16)}${ctx.features & FEATURE_BIT.xfd ? `, XFD 0x${val(guestXfdId(v)).toString(16)}` : ""})`);
}

/** kvm_put_guest_fpu → fpu_swap_kvm_fpstate(guest, false): save the guest's registers unless already saved, XFD back, the task's state back. */
export function putGuestFpuSwap(ctx: RunCtx): void {
  const v = ctx.vcpu;
  if (!ctx.needFpuLoad) fpstateOp(ctx, "xsave", GUEST_FP_ID, v.protectedState ? 0 : v.fpstate.featuresId);
  setXfd(ctx, 0);
  fpstateOp(ctx, "xrstor", USER_FP_ID, ctx.cfg.hostFpstateMaskId);
  ctx.needFpuLoad = false;
  ctx.guestFpuLoaded = false;
}

/** switch_fpu_return in vcpu_enter_guest (IRQs off): with TIF_NEED_FPU_LOAD, XFD then XRSTOR of the owner's fpstate. */
export function switchFpuReturn(ctx: RunCtx): void {
  if (!ctx.needFpuLoad) return;
  const o = owner(ctx);
  setXfd(ctx, o.xfd);
  fpstateOp(ctx, "xrstor", o.base, o.mask);
  ctx.needFpuLoad = false;
  if (ctx.tracing) ctx.note("TIF_NEED_FPU_LOAD: the fpstate is restored");
}

/** The guest's IA32_XFD_ERR goes back into hardware before VM-entry when it is non-zero (vcpu_enter_guest). */
export function restoreXfdErr(ctx: RunCtx): void {
  const e = guestXfdErrId(ctx.vcpu);
  if (e !== 0) ctx.cpu.xfdErrId = e;
}

/**
 * A host interrupt whose handler does kernel_fpu_begin/kernel_fpu_end: the interrupted task's FPU
 * registers are saved to their owner's fpstate (XSAVE under the live XCR0 and XFD) and the restore is
 * left to TIF_NEED_FPU_LOAD. In a -mapxf host the handler's C code needs XCR0.APX, as an NMI's does.
 */
export function runHostIrqHandler(ctx: RunCtx, site: string): void {
  if (ctx.tracing) ctx.note(`host IRQ at ${site}: its handler uses kernel_fpu_begin`);
  if (ctx.kernelApx && !ctx.cpu.xcr0Apx) {
    ctx.violate("apxf-c-needs-apx", `IRQ handler (C, -mapxf host) entered at ${site} with XCR0 0x${ctx.cpu.xcr0.toString(16)}`);
    return;
  }
  if (ctx.needFpuLoad) return;
  const o = owner(ctx);
  fpstateOp(ctx, "xsave", o.base, o.mask);
  ctx.needFpuLoad = true;
}

/**
 * The vCPU thread scheduled out and back: vcpu_put (its steps, variants.ts "vcpu-put"), switch_to
 * saves the outgoing registers (unless TIF_NEED_FPU_LOAD) and restores the next task's state — XFD,
 * then XRSTOR of a task that has used SSE, AVX (and R16–R31 on an APX host) — under whatever XCR0 is
 * live; the other task runs; switch_to back; vcpu_load (its steps, "vcpu-load").
 */
export function scheduleOut(ctx: RunCtx, why: string): void {
  if (ctx.tracing) ctx.note(`${why}: the vCPU thread is scheduled out`);
  ctx.runSequence("vcpu-put");
  const o = owner(ctx);
  if (!ctx.needFpuLoad) fpstateOp(ctx, "xsave", o.base, o.mask);
  primeOtherTask(ctx);
  setXfd(ctx, 0);
  fpstateOp(ctx, "xrstor", OTHER_FP_ID, ctx.cfg.hostFpstateMaskId);
  const cpu = ctx.cpu;
  if (ctx.cpuApx) {
    for (let i = 0; i < 16; i++) cpu.setGprId(16 + i, OTHER_TASK_EGPR_ID[i]!, Tag.hostUser);
    cpu.markApxInUse();
  }
  if (ctx.tracing) ctx.note("another task ran");
  fpstateOp(ctx, "xsave", OTHER_FP_ID, ctx.cfg.hostFpstateMaskId);
  setXfd(ctx, o.xfd);
  fpstateOp(ctx, "xrstor", o.base, o.mask);
  ctx.needFpuLoad = false;
  ctx.runSequence("vcpu-load");
  if (ctx.tracing) ctx.note("the vCPU thread runs again");
}

/** The other task's fpstate: XSTATE_BV = FP|SSE|YMM (and APX on an APX host) within the host's, its R16–R31. */
function primeOtherTask(ctx: RunCtx): void {
  let bv = (XFEATURE_MASK.FP | XFEATURE_MASK.SSE | XFEATURE_MASK.YMM | (ctx.cpuApx ? XFEATURE_MASK.APX : 0n)) & ctx.hostXcr0;
  if (bv === 0n) bv = XFEATURE_MASK.FP;
  ctx.memStore(OTHER_FP_ID, 512, vid(bv), Tag.hostUser);
  for (let i = 0; i < 16; i++) ctx.memStore(OTHER_FP_ID, 960 + 8 * i, OTHER_TASK_EGPR_ID[i]!, Tag.hostUser);
}

/**
 * kvm_machine_check for a #MC the guest took (the exit says so): the host #MC handler runs — and, in
 * the kernels before the #MC code moved its work to task context, could schedule (docs/facts.md#machine-check).
 */
export function machineCheck(ctx: RunCtx): void {
  if (ctx.guestExit?.kind !== "mce") return;
  if (ctx.tracing) ctx.note("kvm_machine_check: the host #MC handler runs");
  scheduleOut(ctx, "the #MC handler");
}
