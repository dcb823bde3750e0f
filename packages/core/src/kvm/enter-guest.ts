/**
 * The world switch as a sequence of sites (docs/model.md#sites; order as in docs/facts.md#xfeature-switch):
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
import { ENTER_GUEST_POST, ENTER_GUEST_PRE, FASTPATH_SITE, KVM_RUN_ENTRY, KVM_RUN_EXIT, planSite, runPlanned, type PlannedSite } from "./sites.js";
import { FastpathResult, type Site, type VendorOps } from "./vendor-ops.js";
import type { Design } from "./designs.js";
import type { ResolvedVariant } from "./variants.js";
import { siteHook } from "./feature-hooks.js";

/** At most this many fastpath re-entries per exit (KVM bounds the loop by pending work, the model by this). */
const MAX_REENTER = 8;
/** At most this many in-kernel exit/re-entry rounds per KVM_RUN. */
const MAX_ROUNDS = 8;

const present = (design: Design) => (s: Site): boolean =>
  !s.anchor || s.run !== undefined || actionsAt(design, s.anchor).length > 0;

/** The site sequence of one KVM_RUN for a design on a backend, resolved once (anchors without actions dropped). */
interface RunPlan {
  readonly entry: readonly PlannedSite[];
  readonly pre: readonly PlannedSite[];
  readonly run: readonly PlannedSite[];
  readonly fastpath: PlannedSite;
  readonly post: readonly PlannedSite[];
  readonly exit: readonly PlannedSite[];
  readonly sites: readonly Site[];
  readonly nmiSites: readonly string[];
}
const plans = new WeakMap<Design, Map<VendorOps, RunPlan[]>>();

type PlanCfg = Pick<ResolvedConfig, "backend" | "design" | "pre"> & {
  readonly layout?: { readonly nmiSites: readonly string[] };
  readonly variant?: ResolvedVariant;
};

function runPlan(cfg: PlanCfg, design: Design = cfg.design): RunPlan {
  const { backend, pre } = cfg;
  if (cfg.variant) return variantPlan(cfg.variant, design, backend, pre);
  let byBackend = plans.get(design);
  if (!byBackend) plans.set(design, (byBackend = new Map()));
  let both = byBackend.get(backend);
  if (!both) byBackend.set(backend, (both = []));
  const k = pre ? 1 : 0;
  let plan = both[k];
  if (!plan) {
    const keep = present(design);
    const all = allNmiSiteIds(backend, pre);
    const plan1 = (xs: readonly Site[]) => xs.filter(keep).map((s) => planSite(s, design, all));
    const entry = plan1(KVM_RUN_ENTRY);
    const preSites = plan1(ENTER_GUEST_PRE);
    const run = plan1(backend.runSites({ pre }));
    const post = plan1(ENTER_GUEST_POST);
    const exit = plan1(KVM_RUN_EXIT);
    const fastpath = planSite(FASTPATH_SITE, design, all);
    const sites = [...entry, ...preSites, ...run, fastpath, ...post, ...exit].map((p) => p.site);
    plan = both[k] = { entry, pre: preSites, run, fastpath, post, exit, sites, nmiSites: sites.filter((s) => s.nmiOpen).map((s) => s.id) };
  }
  return plan;
}

/**
 * The run plan of a machine with a variant (variants.ts): its KVM_RUN segments, planned like the
 * default ones, and at each IRQ-open or preemptible site the hook that fires an armed IRQ or
 * schedule (feature-hooks.ts). Cached per resolved variant and design.
 */
const variantPlans = new WeakMap<ResolvedVariant, Map<Design, RunPlan>>();
function variantPlan(rv: ResolvedVariant, design: Design, backend: VendorOps, pre: boolean): RunPlan {
  let byDesign = variantPlans.get(rv);
  if (!byDesign) variantPlans.set(rv, (byDesign = new Map()));
  let plan = byDesign.get(design);
  if (!plan) {
    const keep = present(design);
    const all = allNmiSiteIds(backend, pre);
    const withHooks = (p: PlannedSite): PlannedSite => {
      const irq = rv.irqSites.indexOf(p.site.id) + 1;
      const sched = rv.schedSites.indexOf(p.site.id) + 1;
      return irq === 0 && sched === 0 ? p : { ...p, hooks: siteHook(irq, sched, p.site.id) };
    };
    const plan1 = (xs: readonly Site[]) => xs.filter(keep).map((s) => withHooks(planSite(s, design, all)));
    const k = rv.kvmRun;
    const entry = plan1(k.entry);
    const preSites = plan1(k.pre);
    const run = plan1(k.run);
    const post = plan1(k.post);
    const exit = plan1(k.exit);
    const fastpath = planSite(k.fastpath, design, all);
    const sites = [...entry, ...preSites, ...run, fastpath, ...post, ...exit].map((p) => p.site);
    plan = { entry, pre: preSites, run, fastpath, post, exit, sites, nmiSites: sites.filter((s) => s.nmiOpen).map((s) => s.id) };
    byDesign.set(design, plan);
  }
  return plan;
}

/** One KVM_RUN round trip running `ctx.program` in the guest. */
export function kvmRun(ctx: RunCtx): void {
  const plan = runPlan(ctx.cfg, ctx.design);
  for (const s of plan.entry) runPlanned(ctx, s);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    vcpuEnterGuest(ctx, plan);
    if (ctx.disposition === "userspace" || ctx.pc >= ctx.program.length) break;
  }
  for (const s of plan.exit) runPlanned(ctx, s);
}

function vcpuEnterGuest(ctx: RunCtx, plan: RunPlan): void {
  ctx.disposition = undefined;
  ctx.guestExit = undefined;
  for (const s of plan.pre) runPlanned(ctx, s);
  for (let n = 0; ; n++) {
    for (const s of plan.run) runPlanned(ctx, s);
    runPlanned(ctx, plan.fastpath);
    if (ctx.fastpathResult !== FastpathResult.REENTER_GUEST) break;
    if (ctx.pc >= ctx.program.length || n + 1 >= MAX_REENTER) {
      ctx.fastpathResult = FastpathResult.EXIT_HANDLED;
      break;
    }
  }
  for (const s of plan.post) runPlanned(ctx, s);
}

/** Every site of one KVM_RUN under `cfg`, in order (for docs, `kvmx run` and scenario validation). */
export function listSites(cfg: PlanCfg): readonly Site[] {
  return runPlan(cfg).sites;
}

/** The NMI-open site ids of one KVM_RUN under `cfg` ("guest" = an NMI while the guest runs). */
export function listNmiSites(cfg: PlanCfg): readonly string[] {
  return runPlan(cfg).nmiSites;
}

/** Every NMI-open site id a KVM_RUN on `backend` can have under any design (anchors included). */
export function allNmiSiteIds(backend: VendorOps, pre: boolean): string[] {
  const all = [...KVM_RUN_ENTRY, ...ENTER_GUEST_PRE, ...backend.runSites({ pre }), FASTPATH_SITE, ...ENTER_GUEST_POST, ...KVM_RUN_EXIT];
  return [...new Set(all.filter((s) => s.nmiOpen).map((s) => s.id))];
}
