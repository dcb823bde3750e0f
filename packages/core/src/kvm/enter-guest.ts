/**
 * The world switch as a sequence of sites (DESIGN.md "The machine model", FACTS.md §6 order):
 *
 *   KVM_RUN: user → syscall entry → kvm_load_guest_fpu
 *     vcpu_run loop: vcpu_enter_guest =
 *       pre-guest-xfeatures → load guest xfeatures → post-guest-xfeatures → load guest PKRU
 *       → [backend run sites … guest … exit asm …] → fastpath   (loop on REENTER_GUEST)
 *       → pre-host-xfeatures → load host PKRU → load host xfeatures → post-host-xfeatures
 *       → handle_exit_irqoff → handle_exit
 *     (again while the exit was handled in the kernel and the guest has more to run)
 *   → kvm_put_guest_fpu → syscall exit → user
 *
 * Anchor sites without design actions (and without a default body) are left out of the trace.
 */
import type { RunCtx } from "./run-context.js";
import type { ResolvedConfig } from "./machine.js";
import { actionsAt } from "./designs.js";
import { ENTER_GUEST_POST, ENTER_GUEST_PRE, FASTPATH_SITE, KVM_RUN_ENTRY, KVM_RUN_EXIT, runSite } from "./sites.js";
import { FastpathResult, type Site } from "./vendor-ops.js";
import type { Design } from "./designs.js";

/** At most this many fastpath re-entries per exit (KVM bounds the loop by pending work, the model by this). */
const MAX_REENTER = 8;
/** At most this many in-kernel exit/re-entry rounds per KVM_RUN. */
const MAX_ROUNDS = 8;

const present = (design: Design) => (s: Site): boolean =>
  !s.anchor || s.run !== undefined || actionsAt(design, s.anchor).length > 0;

/** One KVM_RUN round trip running `ctx.program` in the guest. */
export function kvmRun(ctx: RunCtx): void {
  const keep = present(ctx.design);
  for (const s of KVM_RUN_ENTRY) runSite(ctx, s);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    vcpuEnterGuest(ctx, keep);
    if (ctx.disposition === "userspace" || ctx.pc >= ctx.program.length) break;
  }
  for (const s of KVM_RUN_EXIT) runSite(ctx, s);
}

function vcpuEnterGuest(ctx: RunCtx, keep: (s: Site) => boolean): void {
  ctx.disposition = undefined;
  ctx.guestExit = undefined;
  for (const s of ENTER_GUEST_PRE) if (keep(s)) runSite(ctx, s);
  for (let n = 0; ; n++) {
    for (const s of ctx.backend.runSites({ pre: ctx.cfg.pre })) if (keep(s)) runSite(ctx, s);
    runSite(ctx, FASTPATH_SITE);
    if (ctx.fastpathResult !== FastpathResult.REENTER_GUEST) break;
    if (ctx.pc >= ctx.program.length || n + 1 >= MAX_REENTER) {
      ctx.fastpathResult = FastpathResult.EXIT_HANDLED;
      break;
    }
  }
  for (const s of ENTER_GUEST_POST) if (keep(s)) runSite(ctx, s);
}

/** The NMI-open site ids of one KVM_RUN under `cfg` ("guest" = an NMI while the guest runs). */
export function listNmiSites(cfg: ResolvedConfig): string[] {
  const keep = present(cfg.design);
  const all = [...KVM_RUN_ENTRY, ...ENTER_GUEST_PRE, ...cfg.backend.runSites({ pre: cfg.pre }), FASTPATH_SITE, ...ENTER_GUEST_POST, ...KVM_RUN_EXIT];
  return all.filter((s) => s.nmiOpen && keep(s)).map((s) => s.id);
}

/** Every site of one KVM_RUN under `cfg`, in order (for docs, `kvmx run` and scenario validation). */
export function listSites(cfg: ResolvedConfig): Site[] {
  const keep = present(cfg.design);
  return [...KVM_RUN_ENTRY, ...ENTER_GUEST_PRE, ...cfg.backend.runSites({ pre: cfg.pre }), FASTPATH_SITE, ...ENTER_GUEST_POST, ...KVM_RUN_EXIT].filter(keep);
}
