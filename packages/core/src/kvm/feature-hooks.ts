/**
 * Where the model features reach into the world switch (called from sites.ts and enter-guest.ts only
 * when a feature is on, so the default model pays nothing): the guest's CR4.PKE and a pending machine
 * check at the guest site, host IRQs and schedules at their sites, and the host-xstate monitor at the
 * return of KVM_RUN.
 */
import { FEATURE_BIT } from "./features.js";
import { HOST_PKRU, HOST_PKRU_ID, armedIrq, armedSched, guestCr4Pke, setArmedIrq, setArmedSched } from "./feature-state.js";
import { runHostIrqHandler, scheduleOut } from "./host-irq.js";
import type { RunCtx } from "./run-context.js";
import { fpstateOp } from "./sites.js";
import { vid } from "../cpu/values.js";
import { HOST_ADDR } from "./host-values.js";

const MCE_EXIT = { kind: "mce" } as const;
const USER_FP_ID = vid(HOST_ADDR.userFpstate);

/** At VM-entry, before any guest instruction: the guest's CR4.PKE; a pending #MC exits at once. True: the guest ran no code. */
export function guestEnters(ctx: RunCtx): boolean {
  const f = ctx.features;
  if (f & FEATURE_BIT.pkru) ctx.cpu.cr4Pke = guestCr4Pke(ctx.vcpu);
  if (ctx.mcePending) {
    ctx.mcePending = false;
    ctx.guestExit = MCE_EXIT;
    ctx.expectedGuestRip = ctx.cpu.rip;
    ctx.note("machine check while the guest runs: VM-exit");
    return true;
  }
  return false;
}

/** At VM-exit: the host's CR4 again (CR4.PKE set: the host has PKU). */
export function guestLeaves(ctx: RunCtx): void {
  if (ctx.features & FEATURE_BIT.pkru) ctx.cpu.cr4Pke = true;
}

/**
 * The per-site hook of a run plan (enter-guest.ts): an IRQ armed at this site (index + 1 into the
 * variant's irqSites) runs its handler, a schedule armed here schedules the vCPU thread out.
 */
export function siteHook(irqIndex: number, schedIndex: number, id: string): (ctx: RunCtx) => void {
  return (ctx) => {
    const st = ctx.st;
    if (irqIndex !== 0 && armedIrq(st) === irqIndex) {
      setArmedIrq(st, 0);
      runHostIrqHandler(ctx, id);
    }
    if (schedIndex !== 0 && armedSched(st) === schedIndex) {
      setArmedSched(st, 0);
      scheduleOut(ctx, `preempted at ${id}`);
    }
  };
}

/**
 * At user:return. Monitor host-xstate: KVM_RUN gives the VMM its own XCR0 back (and, with the pkru
 * feature, its own PKRU — the FPU core does not restore PKRU on the way to userspace). With the
 * registers still saved (TIF_NEED_FPU_LOAD) the return to userspace restores the task's state first.
 */
export function checkHostXstate(ctx: RunCtx): void {
  if (ctx.needFpuLoad) {
    fpstateOp(ctx, "xrstor", USER_FP_ID, ctx.cfg.hostFpstateMaskId);
    ctx.needFpuLoad = false;
  }
  const cpu = ctx.cpu;
  if (cpu.xcr0Id !== ctx.hostXcr0Id) {
    ctx.violate("host-xstate", `KVM_RUN returns to the VMM with XCR0 0x${cpu.xcr0.toString(16)}, the host's is 0x${ctx.hostXcr0.toString(16)}`);
  }
  if (ctx.features & FEATURE_BIT.pkru && cpu.pkruId !== HOST_PKRU_ID) {
    ctx.violate("host-xstate", `KVM_RUN returns to the VMM with PKRU 0x${cpu.pkru.toString(16)}, the VMM's is 0x${HOST_PKRU.toString(16)}`);
  }
}
