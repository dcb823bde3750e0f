import { KvmxError, ModelBugError, type Explorable, type InvariantName, type Violation } from "@kvmx/core";
import { eventKey } from "./event-key.js";
import { Frontier } from "./frontier.js";
import { hashKey, type Hash64 } from "./state-hash.js";
import { VisitedTable } from "./visited-table.js";

/** A shortest event sequence from the start state whose last event breaks `invariant`. */
export interface Counterexample<E> {
  events: E[];
  invariant: InvariantName;
  /** The violation as the model reported it at the last event. */
  violation: Violation;
}

export interface ExploreOptions<E = unknown> {
  /** Longest event sequence explored; absent: explore until no new state appears (the fixpoint). */
  depth?: number;
  /**
   * "first": stop at the first violation (a shortest one: the search is breadth-first).
   * "per-invariant": keep exploring and keep the shortest counterexample of every invariant broken.
   */
  collect?: "first" | "per-invariant";
  /** Stop (the result says incomplete) once this many distinct states are known. */
  maxStates?: number;
  /** Stop (the result says incomplete) after this many seconds. */
  maxSeconds?: number;
  /** Called now and then with the running counts (progress lines). */
  onProgress?: (p: ExploreProgress) => void;
  /**
   * Decides whether a violation is the design's or comes from code every design shares (a finding,
   * after which the search goes on). Called once per (valuation, class of violation) with the first —
   * shortest — event sequence of that class; later violations of the class share its answer. A class
   * is the invariant, the site, the violating event's class and the set of event classes on its path
   * (`eventClass`), so violations that differ in any of those are decided on their own.
   * Default: every violation is the design's.
   */
  classify?: (c: Counterexample<E>, variant: number) => "violation" | "finding";
  /** An event's class for `classify`: a small integer 0–29 (the model's event kind). Default: all 0. */
  eventClass?: (event: E) => number;
  /**
   * Whether an event runs no design code (a uAPI call outside KVM_RUN). A violation whose path and
   * last event run none is the same under every design of the EGPR home, so its class leaves out
   * the path's event classes (one classify call covers them all). Default: every event may.
   */
  designFree?: (event: E) => boolean;
}

/** Bit 30 of a path's classes: some event on it ran design code. */
const RAN_DESIGN = 1 << 30;

/** The outcome for one assumption valuation (the model's `variability`; one entry without it). */
export interface VariantResult<E> {
  variant: number;
  verdict: "safe" | "violation";
  /** Shortest first (the design's violations). */
  counterexamples: Counterexample<E>[];
  /** Violations classified as coming from code every design shares, shortest first. */
  findings: Counterexample<E>[];
}

export interface ExploreProgress {
  states: number;
  transitions: number;
  /** The level being expanded (events from the start). */
  depth: number;
  /** States of that level still to expand, plus those found for the next. */
  frontier: number;
  elapsedMs: number;
}

/** Why a search stopped before the fixpoint. */
export type StopReason = "depth" | "max-states" | "max-seconds";

export interface ExploreResult<E> {
  /** The default valuation's verdict (variant 0). */
  verdict: "safe" | "violation";
  /** Shortest first; one per invariant with collect "per-invariant", at most one otherwise (variant 0). */
  counterexamples: Counterexample<E>[];
  /** Every valuation's outcome, variant 0 first. */
  variants: VariantResult<E>[];
  /**
   * True when every reachable state was expanded (the frontier ran empty): a "safe" verdict then
   * holds for every event sequence of any length. A violation is definite either way.
   */
  complete: boolean;
  /** Set when the search was cut short; `frontier` states were known but not expanded. */
  stoppedBy?: StopReason;
  /** Distinct states reached (start included). */
  states: number;
  /** Events applied. */
  transitions: number;
  /** Deepest level fully expanded. */
  depthReached: number;
  /** States found but not expanded when the search stopped (0 when complete). */
  frontier: number;
  /** When complete: the longest shortest path from the start (the last level that added a state). */
  diameter?: number;
  /** Distinct new states per level (level 0 is the start state; 0 when a level only re-reached known states under more valuations). */
  statesPerDepth: number[];
  /** Bytes of the visited store's typed arrays at the end. */
  visitedBytes: number;
}

const MAX_EVENTS_PER_STATE = 0xffff;

/**
 * Breadth-first exploration from `start` until no new state appears, or until a bound (`depth`,
 * `maxStates`, `maxSeconds`) stops it — then the result says so (`complete: false`). States are
 * deduplicated by a 64-bit fingerprint of their canonical key (the model's `fingerprint`, or a hash of
 * `key`). Breadth-first makes the first violation found a shortest one; a state reached by a violating
 * event is not expanded further (the world is already broken there).
 */
export function explore<S, E>(model: Explorable<S, E>, start: S, opts: ExploreOptions<E> = {}): ExploreResult<E> {
  const t0 = performance.now();
  const collect = opts.collect ?? "first";
  const maxStates = opts.maxStates ?? Number.POSITIVE_INFINITY;
  const deadline = opts.maxSeconds === undefined ? Number.POSITIVE_INFINITY : t0 + opts.maxSeconds * 1000;
  const maxDepth = opts.depth ?? Number.POSITIVE_INFINITY;
  const variability = model.variability;
  const nVariants = variability?.count ?? 1;
  const all = nVariants >= 31 ? 0x7fffffff : (1 << nVariants) - 1;
  const agreeMemo = new Map<number, number>();
  const agreeing = (v: number, consulted: number): number => {
    if (!variability) return 1;
    const k = consulted * 32 + v;
    let m = agreeMemo.get(k);
    if (m === undefined) agreeMemo.set(k, (m = variability.agreeing(v, consulted)));
    return m;
  };
  const eventClass = opts.eventClass ?? (() => 0);
  const designFree = opts.designFree ?? (() => false);
  const classBit = (e: E) => (1 << eventClass(e)) | (designFree(e) ? 0 : RAN_DESIGN);
  const classifyKey = (id: number, e: E, v: Violation, before?: E) => {
    const classes = visited.classesOf(id) | classBit(e) | (before === undefined ? 0 : classBit(before));
    return `${v.invariant}@${v.site ?? ""}|${eventClass(e)}|${classes & RAN_DESIGN ? classes : "design-free"}`;
  };
  const visited = new VisitedTable();
  const h: Hash64 = { hi: 0, lo: 0 };
  const hash = model.fingerprint ? (s: S) => model.fingerprint!(s, h) : (s: S) => hashKey(model.key(s), h);
  const found = Array.from({ length: nVariants }, () => new Map<InvariantName, Counterexample<E>>());
  const findings = Array.from({ length: nVariants }, () => new Map<string, Counterexample<E>>());
  const classified = Array.from({ length: nVariants }, () => new Map<string, "violation" | "finding">());
  /** Valuations still searched: with collect "first" a valuation leaves at its first violation. */
  let live = all;
  const rootId = visited.insert(hash(start), -1, 0, all);
  /** The event that reached each node (references to the model's event objects: a counterexample's path without a replay). */
  const nodeEvent: E[] = [];
  const eventsTo = (id: number): E[] => {
    const out: E[] = [];
    for (let n = id; n !== rootId && n >= 0; n = visited.parentOf(n)) out.push(nodeEvent[n]!);
    return out.reverse();
  };
  /** Slabs of expanded levels, reused by the levels after them (Frontier). */
  const spareSlabs: Int32Array[] = [];
  let frontier = new Frontier<S>(model, spareSlabs);
  frontier.push(start, rootId);
  const statesPerDepth = [1];
  let transitions = 0;
  let depthReached = 0;
  let stoppedBy: StopReason | undefined;
  let pending = 0;
  let sinceCheck = 0;

  /** One valuation's violation at node `id` + `event`: classified once per key, recorded, maybe ends the valuation. */
  const onViolation = (v: number, id: number, event: E, violation: Violation, before?: E): void => {
    const key = classifyKey(id, event, violation, before);
    const known = classified[v]!.get(key);
    if (known === "finding") return;
    if (known === "violation" && (collect === "first" || found[v]!.has(violation.invariant))) return;
    const path = eventsTo(id);
    if (before !== undefined) path.push(before);
    const ce: Counterexample<E> = { events: [...path, event], invariant: violation.invariant, violation };
    const kind = known ?? (opts.classify ? opts.classify(ce, v) : "violation");
    classified[v]!.set(key, kind);
    if (kind === "finding") {
      findings[v]!.set(key, ce);
      return;
    }
    if (!found[v]!.has(violation.invariant)) found[v]!.set(violation.invariant, ce);
    if (collect === "first") live &= ~(1 << v);
  };

  /**
   * Violations of folded events (ApplyResult.folded) met while expanding a level: their paths are one
   * event longer (the folded event put back), so they are reported with the next level's violations,
   * which keeps counterexamples shortest. Only those within the depth bound are kept.
   */
  let deferred: { id: number; event: E; before: E; violation: Violation; group: number }[] = [];
  const reportDeferred = (): void => {
    for (const d of deferred) {
      for (let g = d.group & live; g !== 0; g &= g - 1) onViolation(31 - Math.clz32(g & -g), d.id, d.event, d.violation, d.before);
    }
    deferred = [];
  };

  search: for (let level = 0; frontier.length > 0 && live !== 0; level++) {
    reportDeferred();
    if (live === 0) break;
    if (level >= maxDepth) {
      stoppedBy = "depth";
      pending = frontier.length;
      break;
    }
    const next = new Frontier<S>(model, spareSlabs);
    const before = visited.size;
    for (let f = 0; f < frontier.length; f++) {
      const id = frontier.id(f);
      const mine = visited.valuationsOf(id);
      if ((mine & live) === 0) continue;
      const state = frontier.take(f);
      const events = model.events(state);
      if (events.length > MAX_EVENTS_PER_STATE) {
        throw new ModelBugError(`model offers ${events.length} events in one state; the checker stores event indices in 16 bits`);
      }
      for (let i = 0; i < events.length; i++) {
        const event = events[i] as E;
        let rem = mine & live;
        while (rem !== 0) {
          const v = 31 - Math.clz32(rem & -rem);
          const result = applyOrExplain(model, start, visited, id, state, event, v);
          transitions++;
          // Every valuation that agrees with v on the assumptions this run read ran the same way.
          const group = agreeing(v, result.consulted ?? 0) & rem;
          rem &= ~group;
          if (result.folded !== undefined && level + 2 <= maxDepth) {
            for (const f of result.folded) {
              for (const viol of collect === "first" ? f.violations.slice(0, 1) : f.violations) deferred.push({ id, event, before: f.before, violation: viol, group });
            }
          }
          if (result.violations.length > 0) {
            // "first": one violation per valuation (its others show up when it is replayed).
            for (let g = group; g !== 0; g &= g - 1) {
              const w = 31 - Math.clz32(g & -g);
              for (const viol of collect === "first" ? result.violations.slice(0, 1) : result.violations) onViolation(w, id, event, viol);
            }
            continue;
          }
          const child = visited.insert(hash(result.state), id, i, group & live, classBit(event));
          if (child < 0) continue;
          nodeEvent[child] = event;
          next.push(result.state, child);
          if (visited.size >= maxStates) {
            stoppedBy = "max-states";
            pending = frontier.length - f - 1 + next.length;
            break search;
          }
        }
        if (live === 0) break search;
      }
      if (++sinceCheck >= 64) {
        sinceCheck = 0;
        const now = performance.now();
        opts.onProgress?.({ states: visited.size, transitions, depth: level, frontier: frontier.length - f - 1 + next.length, elapsedMs: now - t0 });
        if (now > deadline) {
          stoppedBy = "max-seconds";
          pending = frontier.length - f - 1 + next.length;
          break search;
        }
      }
    }
    depthReached = level + 1;
    // Distinct new states: a state reached again under more valuations is another node, not a new state.
    if (next.length > 0) statesPerDepth.push(visited.size - before);
    frontier.recycle();
    frontier = next;
  }
  // Folded violations of the last level expanded (or of the level a budget cut short): definite either way.
  reportDeferred();
  opts.onProgress?.({ states: visited.size, transitions, depth: depthReached, frontier: pending, elapsedMs: performance.now() - t0 });
  const shortest = <T extends { events: unknown[] }>(xs: Iterable<T>): T[] => [...xs].sort((a, b) => a.events.length - b.events.length);
  const variants: VariantResult<E>[] = found.map((m, v) => ({
    variant: v,
    verdict: m.size > 0 ? "violation" : "safe",
    counterexamples: shortest(m.values()),
    findings: shortest(findings[v]!.values()),
  }));
  const first = variants[0]!;
  // A valuation that stopped at its first violation did not reach the fixpoint, but its verdict is
  // final; the search is complete when no bound stopped it (every remaining valuation was exhausted).
  const complete = stoppedBy === undefined && (variants.some((x) => x.verdict === "safe") || collect !== "first");
  const result: ExploreResult<E> = {
    verdict: first.verdict,
    counterexamples: first.counterexamples,
    variants,
    complete,
    states: visited.size,
    transitions,
    depthReached,
    frontier: pending,
    statesPerDepth,
    visitedBytes: visited.bytes,
  };
  if (stoppedBy) result.stoppedBy = stoppedBy;
  if (complete) {
    let d = statesPerDepth.length - 1;
    while (d > 0 && statesPerDepth[d] === 0) d--;
    result.diameter = d;
  }
  return result;
}

/**
 * model.apply, with a model exception turned into an internal error that names the event sequence
 * reaching it (so the model's developer can replay it); the original error is kept as the cause.
 */
function applyOrExplain<S, E>(model: Explorable<S, E>, start: S, visited: VisitedTable, id: number, state: S, event: E, variant: number) {
  try {
    return model.apply(state, event, undefined, variant);
  } catch (err) {
    let path: string;
    try {
      path = [...pathEvents(model, start, visited.pathTo(id), variant), event].map(eventKey).join(", ");
    } catch (pathErr) {
      // Reported inside the message rather than dropped: the original error stays the cause.
      path = `(path not replayable: ${pathErr instanceof Error ? pathErr.message : String(pathErr)}) … ${eventKey(event)}`;
    }
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new KvmxError(`the model threw while exploring [${path}]: ${what}`, "internal", { cause: err });
  }
}

/** Rebuilds the events of a path of event indices by replaying it from the start state (under `variant`). */
function pathEvents<S, E>(model: Explorable<S, E>, start: S, path: readonly number[], variant = 0): E[] {
  const out: E[] = [];
  let state = start;
  for (const idx of path) {
    const event = model.events(state)[idx];
    if (event === undefined) throw new ModelBugError(`replaying a parent path: event #${idx} is not enabled any more (events() is not deterministic)`);
    out.push(event);
    state = model.apply(state, event, undefined, variant).state;
  }
  return out;
}
