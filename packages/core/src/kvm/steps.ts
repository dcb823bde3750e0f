/**
 * KVM's code as steps the variant engine (variants.ts) can move, guard, drop, key and insert: the
 * sequences besides KVM_RUN's world switch, the steps the model features add to KVM_RUN, the bodies
 * a feature gives existing sites, and the conditions a step can be guarded or keyed on. The world
 * switch's own sites stay where they are defined (sites.ts, each backend's runSites); this file adds
 * to them. docs/model.md#variants.
 */
import { CONDITIONS, type Condition } from "./designs.js";
import { FEATURE_BIT, type Feature } from "./features.js";
import { dbWontExit, guestCr4Pke, guestXcr0Pkru, xcr0Loaded } from "./feature-state.js";
import type { RunCtx } from "./run-context.js";
import { evalCondition } from "./sites.js";
import type { Site, VendorCtx } from "./vendor-ops.js";
import { loadGuestPkru, loadHostPkru } from "./pkru.js";
import { loadGuestFpuSwap, machineCheck, putGuestFpuSwap, restoreXfdErr, switchFpuReturn } from "./host-irq.js";
import { xfdDropSavedComponents, xfdUpdateState, setXsaveDropXfd } from "./xfd.js";
import { loadGuestDr6, syncDebugRegs } from "./dr6.js";
import {
  createMarkRegs, forgetGuestXcr0, loadGuestXcr0Flagged, mmuReload, putGuestXcr0, resetAtCreate, resetClearCr3, resetState, resetVendorSetCr0,
} from "./lifecycle.js";

/** The step sequences of KVM a variant can edit. */
export const SEQUENCES = {
  "kvm-run": "one KVM_RUN: kvm_arch_vcpu_ioctl_run, vcpu_enter_guest and the vendor's vcpu_run (docs/model.md#sites)",
  "set-xcr": "what __kvm_set_xcr does after its checks pass, before it stores the new XCR0 (an emulated guest XSETBV)",
  "vcpu-put": "kvm_arch_vcpu_put when the vCPU thread is scheduled out",
  "vcpu-load": "kvm_arch_vcpu_load when it is scheduled back in",
  "fpu-update-guest-xfd": "fpu_update_guest_xfd: a guest WRMSR(IA32_XFD)",
  "set-xsave": "KVM_SET_XSAVE before the image is copied into the guest fpstate",
  "vcpu-create": "kvm_arch_vcpu_create (KVM_CREATE_VCPU)",
  "vcpu-reset": "kvm_vcpu_reset (RESET and INIT)",
} as const;
export type SequenceName = keyof typeof SEQUENCES;
export const SEQUENCE_NAMES = Object.keys(SEQUENCES) as SequenceName[];

// ---- conditions --------------------------------------------------------------------------------

/** Conditions only steps use (besides the design conditions of designs.ts). */
export const STEP_CONDITIONS = {
  "guest-cr4-pke": "the guest's CR4.PKE",
  "guest-xcr0-pkru": "the guest's XCR0.PKRU (bit 9)",
  "guest-cr4-osxsave": "the guest's CR4.OSXSAVE",
  "guest-xcr0-loaded": "vcpu->guest_xcr0_loaded (KVM up to v4.x)",
  "db-wont-exit": "KVM_DEBUGREG_WONT_EXIT: the guest's DR accesses do not exit",
  "need-fpu-load": "TIF_NEED_FPU_LOAD: the FPU registers were saved and are not back yet",
  "guest-fpu-loaded": "the guest fpstate is the current one (between kvm_load_guest_fpu and kvm_put_guest_fpu)",
} as const;
type StepConditionName = keyof typeof STEP_CONDITIONS;

/** A step condition: a name (negated with "!"), a list that holds when all do, or `{ any: [...] }`. */
export type StepCondition = string | readonly StepCondition[] | { readonly any: readonly StepCondition[] };
export type ConditionTest = (ctx: RunCtx) => boolean;

/** Every name a step condition may use. */
export const STEP_CONDITION_NAMES: readonly string[] = [...CONDITIONS, ...Object.keys(STEP_CONDITIONS)];

const stepTest: Record<StepConditionName, ConditionTest> = {
  "guest-cr4-pke": (ctx) => guestCr4Pke(ctx.vcpu),
  "guest-xcr0-pkru": (ctx) => guestXcr0Pkru(ctx.vcpu),
  "guest-cr4-osxsave": (ctx) => ctx.vcpu.cr4Osxsave,
  "guest-xcr0-loaded": (ctx) => xcr0Loaded(ctx.vcpu),
  "db-wont-exit": (ctx) => dbWontExit(ctx.vcpu),
  "need-fpu-load": (ctx) => ctx.needFpuLoad,
  "guest-fpu-loaded": (ctx) => ctx.guestFpuLoaded,
};

/** Why a condition is malformed, or undefined. */
export function conditionProblem(c: unknown): string | undefined {
  if (typeof c === "string") {
    const name = c.startsWith("!") ? c.slice(1) : c;
    if (name.startsWith("flag:")) return "flag: conditions belong to design actions (a latch sets them), not to steps";
    if (!STEP_CONDITION_NAMES.includes(name) || c === "!always") return `unknown condition ${JSON.stringify(c)} (known: ${STEP_CONDITION_NAMES.join(", ")}; each negatable with "!")`;
    return undefined;
  }
  if (Array.isArray(c)) {
    if (c.length === 0) return "an empty list of conditions";
    for (const x of c) {
      const p = conditionProblem(x);
      if (p) return p;
    }
    return undefined;
  }
  if (c !== null && typeof c === "object" && Object.keys(c).length === 1 && Array.isArray((c as { any?: unknown }).any)) {
    const any = (c as { any: unknown[] }).any;
    if (any.length === 0) return "any: an empty list";
    for (const x of any) {
      const p = conditionProblem(x);
      if (p) return p;
    }
    return undefined;
  }
  return 'a condition is a name, a list (all of them) or { any: [names] }';
}

/** The test a condition stands for (checked with conditionProblem first). */
export function compileCondition(c: StepCondition): ConditionTest {
  if (typeof c === "string") {
    const neg = c.startsWith("!");
    const name = neg ? c.slice(1) : c;
    const own = (stepTest as Record<string, ConditionTest>)[name];
    const t: ConditionTest = own ?? ((ctx) => evalCondition(ctx, name as Condition));
    return neg ? (ctx) => !t(ctx) : t;
  }
  if (Array.isArray(c)) {
    const ts = c.map(compileCondition);
    return (ctx) => ts.every((t) => t(ctx));
  }
  const ts = (c as { any: readonly StepCondition[] }).any.map(compileCondition);
  return (ctx) => ts.some((t) => t(ctx));
}

/** A condition as text ("guest-cr4-pke", "any(guest-cr4-pke, guest-xcr0-pkru)", "a & b"). */
export function conditionText(c: StepCondition): string {
  if (typeof c === "string") return c;
  if (Array.isArray(c)) return c.map(conditionText).join(" & ");
  return `any(${(c as { any: readonly StepCondition[] }).any.map(conditionText).join(", ")})`;
}

// ---- the catalogue -----------------------------------------------------------------------------

type Body = (ctx: VendorCtx) => void;
const body = (f: (ctx: RunCtx) => void): Body => f as Body;

/**
 * A step: a site of one sequence. `feature` steps are part of their sequence's default only when the
 * machine has the feature; `catalogueOnly` steps only when a variant inserts them. In KVM_RUN a step
 * is placed `before` or `after` a site of the default world switch. A keyed step's body tests `key`
 * (a variant's `key:` edit replaces it).
 */
export interface Step extends Site {
  readonly sequence: SequenceName;
  /** The feature (or any of the features) that brings the step into its sequence's default. */
  readonly feature?: Feature | readonly Feature[];
  readonly catalogueOnly?: boolean;
  readonly before?: string;
  readonly after?: string;
  readonly key?: StepCondition;
  readonly keyed?: (test: ConditionTest) => Body;
}

/** Bodies features give sites that exist without them (the world switch's PKRU and FPU sites). */
export interface BodyOverride {
  readonly id: string;
  /** Feature bits any of which brings this body in. */
  readonly features: number;
  readonly key?: StepCondition;
  readonly keyed?: (test: ConditionTest) => Body;
  readonly run?: Body;
}

const c = (id: string, description: string, rest: Omit<Step, "id" | "kind" | "nmiOpen" | "description">): Step => ({
  id, kind: "c", nmiOpen: false, description, ...rest,
});

/** The preemption markers come with either feature that needs to know where the thread is preemptible. */
const MARKERS: readonly Feature[] = ["host-irq", "sched-out"];

/** The PKRU switch's key since 37486135d3a7: CR4.PKE or XCR0.PKRU. */
const PKRU_KEY: StepCondition = { any: ["guest-cr4-pke", "guest-xcr0-pkru"] };

/** Every step the model knows besides the default world switch's sites, in default order. */
export const STEPS: readonly Step[] = [
  // KVM_RUN, vcpu_enter_guest before the run loop.
  c("x86:mmu-reload", "kvm_mmu_reload: the vendor's load_mmu_pgd writes a dirty CR3 back", { sequence: "kvm-run", feature: "cr3", before: "x86:pre-guest-xfeatures", run: body(mmuReload) }),
  c("x86:preempt-disable", "preempt_disable(): no scheduling from here", { sequence: "kvm-run", feature: MARKERS, before: "x86:pre-guest-xfeatures" }),
  c("x86:irq-disable", "local_irq_disable(): host interrupts wait from here (one arriving at this point runs first)", { sequence: "kvm-run", feature: "host-irq", before: "x86:pre-guest-xfeatures" }),
  c("x86:switch-fpu-return", "switch_fpu_return: with TIF_NEED_FPU_LOAD, the fpstate goes back into the registers (XFD, then XRSTOR)", { sequence: "kvm-run", feature: "host-irq", before: "x86:pre-guest-xfeatures", run: body(switchFpuReturn) }),
  c("x86:restore-xfd-err", "the guest's IA32_XFD_ERR back into hardware when non-zero", { sequence: "kvm-run", feature: "xfd", before: "x86:pre-guest-xfeatures", run: body(restoreXfdErr) }),
  c("x86:load-guest-dr6", "kvm_x86_ops.set_dr6: with KVM_DEBUGREG_WONT_EXIT, DR6 = vcpu->arch.dr6", { sequence: "kvm-run", feature: "dr6", before: "x86:load-guest-pkru", run: body(loadGuestDr6) }),
  // KVM_RUN after the run loop.
  c("x86:sync-debugregs", "sync_dirty_debug_regs: with KVM_DEBUGREG_WONT_EXIT, save DR6, intercept DR accesses again", { sequence: "kvm-run", feature: "dr6", before: "x86:pre-host-xfeatures", run: body(syncDebugRegs) }),
  c("x86:machine-check", "kvm_machine_check: the host #MC handler for a #MC the guest took (it may schedule)", { sequence: "kvm-run", feature: "machine-check", before: "x86:handle-exit-irqoff", run: body(machineCheck) }),
  c("x86:irq-enable", "local_irq_enable(): a pending host interrupt runs now", { sequence: "kvm-run", feature: "host-irq", before: "x86:handle-exit" }),
  c("x86:preempt-enable", "preempt_enable(): the vCPU thread can be scheduled out again", { sequence: "kvm-run", feature: MARKERS, before: "x86:handle-exit" }),
  // Steps of KVM up to v4.x, only where a variant puts them.
  c("x86:load-guest-xcr0", "kvm_load_guest_xcr0 (up to v4.x): with CR4.OSXSAVE and guest_xcr0_loaded clear, XSETBV(guest), set the flag", { sequence: "kvm-run", catalogueOnly: true, run: body(loadGuestXcr0Flagged) }),
  c("x86:put-guest-xcr0", "kvm_put_guest_xcr0 (up to v4.x): with guest_xcr0_loaded set, XSETBV(host) if the guest's differs, clear the flag", { sequence: "kvm-run", catalogueOnly: true, run: body(putGuestXcr0) }),
  c("x86:forget-guest-xcr0", "guest_xcr0_loaded = 0 (what __kvm_set_xcr did before 42bdf991f4ca)", { sequence: "set-xcr", catalogueOnly: true, run: body(forgetGuestXcr0) }),
  // fpu_update_guest_xfd.
  c("x86:xfd-drop-saved-components", "with TIF_NEED_FPU_LOAD, clear the newly disarmed components in the saved XSTATE_BV (b45f72177594)", { sequence: "fpu-update-guest-xfd", feature: "xfd", run: body(xfdDropSavedComponents) }),
  c("x86:xfd-update-state", "fpstate->xfd = xfd; IA32_XFD too while the fpstate is in use", { sequence: "fpu-update-guest-xfd", feature: "xfd", run: body(xfdUpdateState) }),
  // KVM_SET_XSAVE.
  c("x86:set-xsave-drop-xfd", "XSTATE_BV &= ~guest XFD (b45f72177594)", { sequence: "set-xsave", feature: "xfd", run: body(setXsaveDropXfd) }),
  // kvm_arch_vcpu_create, kvm_vcpu_reset.
  c("x86:vcpu-create-mark-regs", "regs_avail = regs_dirty = all ones (7117003fe4e3)", { sequence: "vcpu-create", feature: "vcpu-create", run: body(createMarkRegs) }),
  c("x86:vcpu-reset-at-create", "kvm_vcpu_reset(vcpu, false)", { sequence: "vcpu-create", feature: "vcpu-create", run: body(resetAtCreate) }),
  c("x86:reset-vendor-set-cr0", "the vendor's set_cr0 at RESET, which reads CR3 through the cache", { sequence: "vcpu-reset", feature: "vcpu-create", run: body(resetVendorSetCr0) }),
  c("x86:reset-state", "kvm_vcpu_reset: regs[] cleared, RIP/RFLAGS/XCR0 at their RESET values, every register available and dirty; the vendor writes its state", { sequence: "vcpu-reset", run: body(resetState) }),
  c("x86:reset-clear-cr3", "vcpu->arch.cr3 = 0, marked dirty (03a6e84069d1)", { sequence: "vcpu-reset", feature: "cr3", run: body(resetClearCr3) }),
];

/** Bodies for sites of the default world switch when a feature is on. */
export const OVERRIDES: readonly BodyOverride[] = [
  { id: "x86:load-guest-pkru", features: FEATURE_BIT.pkru, key: PKRU_KEY, keyed: (t) => body(loadGuestPkru(t)) },
  { id: "x86:load-host-pkru", features: FEATURE_BIT.pkru, key: PKRU_KEY, keyed: (t) => body(loadHostPkru(t)) },
  { id: "x86:load-guest-fpu", features: FEATURE_BIT.xfd | FEATURE_BIT["host-irq"] | FEATURE_BIT["sched-out"] | FEATURE_BIT["machine-check"], run: body(loadGuestFpuSwap) },
  { id: "x86:put-guest-fpu", features: FEATURE_BIT.xfd | FEATURE_BIT["host-irq"] | FEATURE_BIT["sched-out"] | FEATURE_BIT["machine-check"], run: body(putGuestFpuSwap) },
];

export const stepById = (id: string): Step | undefined => STEPS.find((s) => s.id === id);

/** Whether a step is part of its sequence's default with these features. */
export const stepInDefault = (s: Step, features: number): boolean =>
  !s.catalogueOnly && (s.feature === undefined || [s.feature].flat().some((f) => (features & FEATURE_BIT[f]) !== 0));

/**
 * Runs the steps of a sequence other than KVM_RUN inside the current trace step: each body in turn,
 * named in the trace's notes.
 */
export function runSequenceSteps(ctx: RunCtx, steps: readonly Site[]): void {
  for (const s of steps) {
    if (ctx.tracing) ctx.note(`[${s.id}]`);
    s.run?.(ctx);
  }
}
