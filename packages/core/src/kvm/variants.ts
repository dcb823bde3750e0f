/**
 * Variants: KVM's own code as data. A variant names the model features it needs and edits KVM's step
 * sequences (steps.ts) — the world switch of KVM_RUN and the smaller sequences around it: move a step,
 * drop it, insert a step KVM has elsewhere, replace one with another, guard one with a condition, or
 * key a step's own test on another condition. The Machine resolves its variant once (resolveVariant)
 * into the sequences its run plans and handlers use; the same engine then checks it. A variant file
 * (scenario/variant-file.ts) is YAML or JSON with file:line:column errors. docs/model.md#variants.
 */
import { ScenarioError, InputError } from "../errors.js";
import { featureBits, hasFeature, FEATURE_BIT, type Feature } from "./features.js";
import { ENTER_GUEST_POST, ENTER_GUEST_PRE, FASTPATH_SITE, KVM_RUN_ENTRY, KVM_RUN_EXIT } from "./sites.js";
import type { Site, VendorCtx, VendorOps } from "./vendor-ops.js";
import type { RunCtx } from "./run-context.js";
import {
  OVERRIDES, SEQUENCE_NAMES, STEPS, compileCondition, conditionProblem, conditionText, runSequenceSteps, stepInDefault,
  type SequenceName, type Step, type StepCondition,
} from "./steps.js";

/** Where a variant's edit is written (file:line:column), for errors found while resolving it. */
export interface EditSource {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** One edit of a variant. `in` names the sequence when a step id alone does not say it. */
export type StepEdit =
  | { readonly op: "move"; readonly step: string; readonly before?: string; readonly after?: string; readonly at?: EditSource }
  | { readonly op: "drop"; readonly step: string; readonly in?: SequenceName; readonly at?: EditSource }
  | { readonly op: "insert"; readonly step: string; readonly before?: string; readonly after?: string; readonly in?: SequenceName; readonly at?: EditSource }
  | { readonly op: "replace"; readonly step: string; readonly with: string; readonly at?: EditSource }
  | { readonly op: "guard"; readonly step: string; readonly when: StepCondition; readonly in?: SequenceName; readonly at?: EditSource }
  | { readonly op: "key"; readonly step: string; readonly on: StepCondition; readonly at?: EditSource };
export type StepEditOp = StepEdit["op"];
export const STEP_EDIT_OPS: readonly StepEditOp[] = ["move", "drop", "insert", "replace", "guard", "key"];

export interface Variant {
  readonly name: string;
  /** One line. */
  readonly description: string;
  /** Where the code it describes comes from (kernel version, commit). */
  readonly source?: string;
  readonly features: readonly Feature[];
  readonly steps: readonly StepEdit[];
}

/** The KVM_RUN sequence in the plan's segments (enter-guest.ts): entry, before the loop, the loop, after it, exit. */
export interface KvmRunSegments {
  readonly entry: readonly Site[];
  readonly pre: readonly Site[];
  readonly run: readonly Site[];
  readonly fastpath: Site;
  readonly post: readonly Site[];
  readonly exit: readonly Site[];
}

/** A variant resolved for one machine (backend, PRE/POST): every sequence's sites, and where host IRQs and schedules can happen. */
export interface ResolvedVariant {
  readonly variant: Variant;
  readonly features: number;
  readonly kvmRun: KvmRunSegments;
  readonly sequences: ReadonlyMap<SequenceName, readonly Site[]>;
  /** KVM_RUN sites with IRQs on (an `irq` event may fire there), and the preemptible ones (`sched-out`). */
  readonly irqSites: readonly string[];
  readonly schedSites: readonly string[];
  runSequence(ctx: RunCtx, name: SequenceName): void;
}

type Seg = "entry" | "pre" | "run" | "fastpath" | "post" | "exit";
interface Slot {
  site: Site;
  seg: Seg;
}

const fail = (e: { at?: EditSource }, message: string): never => {
  if (e.at) throw new ScenarioError(message, e.at);
  throw new InputError(message);
};

/** Sites no edit may move, drop or guard: the guest, the fastpath loop point and userspace. */
const FIXED = new Set(["guest", "x86:fastpath", "user:kvm-run", "user:return"]);

/**
 * Resolves `variant` (and the machine's features) for one backend: the default sequences with the
 * feature steps in their places and the feature bodies, then the edits in order.
 */
export function resolveVariant(variant: Variant, backend: VendorOps, pre: boolean): ResolvedVariant {
  const features = featureBits(variant.features);
  const kvm = defaultKvmRun(features, backend, pre);
  const seqs = new Map<SequenceName, Site[]>();
  for (const name of SEQUENCE_NAMES) {
    if (name === "kvm-run") continue;
    seqs.set(name, STEPS.filter((s) => s.sequence === name && stepInDefault(s, features)).map(withOverride(features)));
  }
  // Which sequence a step id is in (KVM_RUN's flat list, or another sequence).
  const where = (id: string, e: StepEdit, want?: SequenceName): { seq: SequenceName; index: number } => {
    const hits: { seq: SequenceName; index: number }[] = [];
    const k = kvm.findIndex((x) => x.site.id === id);
    if (k >= 0) hits.push({ seq: "kvm-run", index: k });
    for (const [name, list] of seqs) {
      const i = list.findIndex((x) => x.id === id);
      if (i >= 0) hits.push({ seq: name, index: i });
    }
    const hit = want ? hits.filter((h) => h.seq === want) : hits;
    if (hit.length === 0) {
      return fail(e, `step ${id} is not in ${want ? `sequence ${want}` : "any sequence of this machine"}${stepHint(id, features)}`);
    }
    if (hit.length > 1) return fail(e, `step ${id} is in several sequences (${hits.map((h) => h.seq).join(", ")}): say which with in:`);
    return hit[0]!;
  };
  const catalogueStep = (id: string, e: StepEdit): Step => {
    const s = STEPS.find((x) => x.id === id);
    if (!s) return fail(e, `unknown step ${id} (steps a variant can insert: ${STEPS.map((x) => x.id).join(", ")})`);
    return s;
  };
  const place = (e: StepEdit, site: Site, before: string | undefined, after: string | undefined, inSeq: SequenceName | undefined, home: SequenceName): void => {
    const anchor = before ?? after;
    if (before !== undefined && after !== undefined) fail(e, "give before: or after:, not both");
    if (anchor === undefined) {
      const seq = inSeq ?? home;
      if (seq === "kvm-run") fail(e, "a step goes into KVM_RUN before: or after: one of its sites");
      seqs.get(seq)!.push(site);
      return;
    }
    const w = where(anchor, e, inSeq);
    if (w.seq === "kvm-run") {
      const target = kvm[w.index]!;
      const seg: Seg = target.seg === "fastpath" ? (before ? "run" : "post") : target.seg;
      kvm.splice(before ? w.index : w.index + 1, 0, { site, seg });
    } else {
      seqs.get(w.seq)!.splice(before ? w.index : w.index + 1, 0, site);
    }
  };
  const removeAt = (w: { seq: SequenceName; index: number }): Site =>
    w.seq === "kvm-run" ? kvm.splice(w.index, 1)[0]!.site : seqs.get(w.seq)!.splice(w.index, 1)[0]!;
  const replaceAt = (w: { seq: SequenceName; index: number }, site: Site): void => {
    if (w.seq === "kvm-run") kvm[w.index] = { site, seg: kvm[w.index]!.seg };
    else seqs.get(w.seq)![w.index] = site;
  };
  const movable = (e: StepEdit, id: string): void => {
    if (FIXED.has(id)) fail(e, `${id} cannot be ${e.op === "move" ? "moved" : e.op === "drop" ? "dropped" : "edited"}: the model's run loop is built around it`);
  };

  for (const e of variant.steps) {
    switch (e.op) {
      case "move": {
        movable(e, e.step);
        if (e.before === undefined && e.after === undefined) fail(e, "move needs before: or after:");
        const w = where(e.step, e);
        const anchor = (e.before ?? e.after)!;
        if (anchor === e.step) fail(e, `step ${e.step} cannot move relative to itself`);
        const a = where(anchor, e);
        if (a.seq !== w.seq) fail(e, `step ${e.step} is in ${w.seq} and ${anchor} in ${a.seq}: a step moves within its own sequence`);
        place(e, removeAt(w), e.before, e.after, w.seq, w.seq);
        break;
      }
      case "drop":
        movable(e, e.step);
        removeAt(where(e.step, e, e.in));
        break;
      case "insert": {
        const s = catalogueStep(e.step, e);
        place(e, withOverride(features)(s), e.before, e.after, e.in, s.sequence);
        break;
      }
      case "replace": {
        movable(e, e.step);
        const w = where(e.step, e);
        replaceAt(w, withOverride(features)(catalogueStep(e.with, e)));
        break;
      }
      case "guard": {
        movable(e, e.step);
        const problem = conditionProblem(e.when);
        if (problem) fail(e, problem);
        const w = where(e.step, e, e.in);
        const old = w.seq === "kvm-run" ? kvm[w.index]!.site : seqs.get(w.seq)![w.index]!;
        replaceAt(w, guarded(old, e.when));
        break;
      }
      case "key": {
        const problem = conditionProblem(e.on);
        if (problem) fail(e, problem);
        const w = where(e.step, e);
        const old = w.seq === "kvm-run" ? kvm[w.index]!.site : seqs.get(w.seq)![w.index]!;
        const k = keyOf(old.id, features);
        if (!k) fail(e, `step ${e.step} has no key condition of its own to change (keyed steps: ${keyedIds(features).join(", ") || "none with these features"})`);
        replaceAt(w, { ...old, run: k!.keyed(compileCondition(e.on)), description: `${old.description} [keyed on ${conditionText(e.on)}]` });
        break;
      }
    }
  }

  const seg = (s: Seg) => kvm.filter((x) => x.seg === s).map((x) => x.site);
  const kvmRun: KvmRunSegments = { entry: seg("entry"), pre: seg("pre"), run: seg("run"), fastpath: FASTPATH_SITE, post: seg("post"), exit: seg("exit") };
  const flat = [...kvmRun.entry, ...kvmRun.pre, ...kvmRun.run, kvmRun.fastpath, ...kvmRun.post, ...kvmRun.exit];
  const frozen = new Map<SequenceName, readonly Site[]>(seqs);
  return {
    variant,
    features,
    kvmRun,
    sequences: frozen,
    irqSites: hasFeature(features, "host-irq") ? openSites(flat, "x86:irq-disable", "x86:irq-enable") : [],
    schedSites: hasFeature(features, "sched-out") ? openSites(flat, "x86:preempt-disable", "x86:preempt-enable") : [],
    runSequence(ctx, name) {
      const list = frozen.get(name);
      if (list && list.length > 0) runSequenceSteps(ctx, list);
    },
  };
}

/** KVM_RUN's default flat sequence with the feature steps in their places and the feature bodies. */
function defaultKvmRun(features: number, backend: VendorOps, pre: boolean): Slot[] {
  const over = withOverride(features);
  const slots: Slot[] = [
    ...KVM_RUN_ENTRY.map((site) => ({ site: over(site), seg: "entry" as Seg })),
    ...ENTER_GUEST_PRE.map((site) => ({ site: over(site), seg: "pre" as Seg })),
    ...backend.runSites({ pre }).map((site) => ({ site: over(site), seg: "run" as Seg })),
    { site: FASTPATH_SITE, seg: "fastpath" },
    ...ENTER_GUEST_POST.map((site) => ({ site: over(site), seg: "post" as Seg })),
    ...KVM_RUN_EXIT.map((site) => ({ site: over(site), seg: "exit" as Seg })),
  ];
  const lastAfter = new Map<string, string>();
  for (const s of STEPS) {
    if (s.sequence !== "kvm-run" || !stepInDefault(s, features)) continue;
    const anchor = s.before ?? s.after!;
    const at = s.before ? anchor : (lastAfter.get(anchor) ?? anchor);
    const i = slots.findIndex((x) => x.site.id === at);
    if (i < 0) throw new InputError(`step ${s.id}: its place ${anchor} is not a site of ${backend.name}'s KVM_RUN`);
    const seg = slots[i]!.seg === "fastpath" ? (s.before ? "run" : "post") : slots[i]!.seg;
    slots.splice(s.before ? i : i + 1, 0, { site: over(s), seg });
    if (!s.before) lastAfter.set(anchor, s.id);
  }
  return slots;
}

/** The site with the body a feature gives it (keyed bodies built from their default key). */
function withOverride(features: number): (s: Site) => Site {
  return (s) => {
    const step = s as Step;
    if (step.keyed && step.key !== undefined) return { ...s, run: step.keyed(compileCondition(step.key)) };
    const o = OVERRIDES.find((x) => x.id === s.id && (x.features & features) !== 0);
    if (!o) return s;
    if (o.keyed && o.key !== undefined) return { ...s, run: o.keyed(compileCondition(o.key)), description: `${s.description} [keyed on ${conditionText(o.key)}]` };
    return o.run ? { ...s, run: o.run } : s;
  };
}

function keyOf(id: string, features: number): { keyed: (t: (ctx: RunCtx) => boolean) => (ctx: VendorCtx) => void } | undefined {
  const s = STEPS.find((x) => x.id === id);
  if (s?.keyed) return { keyed: s.keyed };
  const o = OVERRIDES.find((x) => x.id === id && x.keyed && (x.features & features) !== 0);
  return o?.keyed ? { keyed: o.keyed } : undefined;
}
const keyedIds = (features: number): string[] => [
  ...STEPS.filter((s) => s.keyed).map((s) => s.id),
  ...OVERRIDES.filter((o) => o.keyed && (o.features & features) !== 0).map((o) => o.id),
];

/** A site whose body runs only when `when` holds (design actions at an anchor are not affected). */
function guarded(s: Site, when: StepCondition): Site {
  const test = compileCondition(when);
  const inner = s.run;
  const text = conditionText(when);
  return {
    ...s,
    description: `${s.description} [only if ${text}]`,
    run: (c) => {
      const ctx = c as RunCtx;
      if (test(ctx)) inner?.(c);
      else if (ctx.tracing) ctx.note(`skipped: ${text} is false`);
    },
  };
}

/** Why an unknown step id is unknown: a feature step of a feature this machine lacks, or no such step. */
function stepHint(id: string, features: number): string {
  const s = STEPS.find((x) => x.id === id);
  if (s && !s.catalogueOnly && !stepInDefault(s, features)) return ` (it comes with feature ${[s.feature].flat().join(" or ")}; add it to features:)`;
  if (s?.catalogueOnly) return " (it is in no sequence until a variant inserts it)";
  return "";
}

/**
 * The host sites of KVM_RUN at which a host IRQ (or a schedule) can happen: every c/asm site outside
 * [off, on) — the marker that turns them off is included (an IRQ arriving just before it runs first).
 * Anchors without a body are left out (they exist only when a design acts there).
 */
function openSites(flat: readonly Site[], off: string, on: string): string[] {
  const out: string[] = [];
  let open = true;
  for (const s of flat) {
    if (s.id === off) {
      if (open) out.push(s.id);
      open = false;
      continue;
    }
    if (s.id === on) {
      open = true;
      continue;
    }
    if (!open || (s.kind !== "c" && s.kind !== "asm") || (s.anchor && !s.run)) continue;
    if (!out.includes(s.id)) out.push(s.id);
  }
  return out;
}

/** A variant with no edits: just features (what a corpus entry's alphabet may need on an unchanged KVM). */
export const featureOnlyVariant = (features: readonly Feature[], name = "features"): Variant => ({
  name, description: `the default model with features ${features.join(", ")}`, features, steps: [],
});

export { FEATURE_BIT };
