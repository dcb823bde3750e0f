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
import { FastpathResult, type Site, type VendorOps } from "./vendor-ops.js";
import type { Design } from "./designs.js";

/** At most this many fastpath re-entries per exit (KVM bounds the loop by pending work, the model by this). */
const MAX_REENTER = 8;
/** At most this many in-kernel exit/re-entry rounds per KVM_RUN. */
const MAX_ROUNDS = 8;

const present = (design: Design) => (s: Site): boolean =>
  !s.anchor || s.run !== undefined || actionsAt(design, s.anchor).length > 0;

/** The site sequence of one KVM_RUN for a design on a backend, resolved once (anchors without actions dropped). */
interface RunPlan {
  readonly entry: readonly Site[];
  readonly pre: readonly Site[];
  readonly run: readonly Site[];
  readonly post: readonly Site[];
  readonly exit: readonly Site[];
}
const plans = new WeakMap<Design, Map<VendorOps, RunPlan[]>>();

function runPlan(backend: VendorOps, design: Design, pre: boolean): RunPlan {
  let byBackend = plans.get(design);
  if (!byBackend) plans.set(design, (byBackend = new Map()));
  let both = byBackend.get(backend);
  if (!both) byBackend.set(backend, (both = []));
  const k = pre ? 1 : 0;
  let plan = both[k];
  if (!plan) {
    const keep = present(design);
    plan = both[k] = {
      entry: KVM_RUN_ENTRY.filter(keep),
      pre: ENTER_GUEST_PRE.filter(keep),
      run: backend.runSites({ pre }).filter(keep),
      post: ENTER_GUEST_POST.filter(keep),
      exit: KVM_RUN_EXIT.filter(keep),
    };
  }
  return plan;
}

/** One KVM_RUN round trip running `ctx.program` in the guest. */
export function kvmRun(ctx: RunCtx): void {
  const plan = runPlan(ctx.backend, ctx.design, ctx.cfg.pre);
  for (const s of plan.entry) runSite(ctx, s);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    vcpuEnterGuest(ctx, plan);
    if (ctx.disposition === "userspace" || ctx.pc >= ctx.program.length) break;
  }
  for (const s of plan.exit) runSite(ctx, s);
}

function vcpuEnterGuest(ctx: RunCtx, plan: RunPlan): void {
  ctx.disposition = undefined;
  ctx.guestExit = undefined;
  for (const s of plan.pre) runSite(ctx, s);
  for (let n = 0; ; n++) {
    for (const s of plan.run) runSite(ctx, s);
    runSite(ctx, FASTPATH_SITE);
    if (ctx.fastpathResult !== FastpathResult.REENTER_GUEST) break;
    if (ctx.pc >= ctx.program.length || n + 1 >= MAX_REENTER) {
      ctx.fastpathResult = FastpathResult.EXIT_HANDLED;
      break;
    }
  }
  for (const s of plan.post) runSite(ctx, s);
}

/** Every site of one KVM_RUN under `cfg`, in order (for docs, `kvmx run` and scenario validation). */
export function listSites(cfg: Pick<ResolvedConfig, "backend" | "design" | "pre">): Site[] {
  const p = runPlan(cfg.backend, cfg.design, cfg.pre);
  return [...p.entry, ...p.pre, ...p.run, FASTPATH_SITE, ...p.post, ...p.exit];
}

/** The NMI-open site ids of one KVM_RUN under `cfg` ("guest" = an NMI while the guest runs). */
export function listNmiSites(cfg: Pick<ResolvedConfig, "backend" | "design" | "pre">): string[] {
  return listSites(cfg).filter((s) => s.nmiOpen).map((s) => s.id);
}

/** Every NMI-open site id a KVM_RUN on `backend` can have under any design (anchors included). */
export function allNmiSiteIds(backend: VendorOps, pre: boolean): string[] {
  const all = [...KVM_RUN_ENTRY, ...ENTER_GUEST_PRE, ...backend.runSites({ pre }), FASTPATH_SITE, ...ENTER_GUEST_POST, ...KVM_RUN_EXIT];
  return [...new Set(all.filter((s) => s.nmiOpen).map((s) => s.id))];
}
