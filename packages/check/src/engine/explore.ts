import { KvmxError, ModelBugError, type Explorable, type InvariantName, type Violation } from "@kvmx/core";
import { eventKey } from "./event-key.js";
import { hashKey, type Hash64 } from "./state-hash.js";
import { VisitedTable } from "./visited-table.js";

/** A shortest event sequence from the start state whose last event breaks `invariant`. */
export interface Counterexample<E> {
  events: E[];
  invariant: InvariantName;
  /** The violation as the model reported it at the last event. */
  violation: Violation;
}

export interface ExploreOptions {
  /** Longest event sequence explored. */
  depth: number;
  /**
   * "first": stop at the first violation (a shortest one: the search is breadth-first).
   * "per-invariant": keep exploring and keep the shortest counterexample of every invariant broken.
   */
  collect?: "first" | "per-invariant";
  /** Stop (and report `truncated`) after this many distinct states. */
  maxStates?: number;
  /** Called now and then with the running counts (progress bars). */
  onProgress?: (states: number, transitions: number) => void;
}

export interface ExploreResult<E> {
  verdict: "safe" | "violation";
  /** Shortest first; one per invariant with collect "per-invariant", at most one otherwise. */
  counterexamples: Counterexample<E>[];
  /** Distinct states reached (start included). */
  states: number;
  /** Events applied. */
  transitions: number;
  /** Deepest level fully explored. */
  depthExplored: number;
  truncated: boolean;
  /** Bytes of the visited store's typed arrays at the end. */
  visitedBytes: number;
}

const MAX_EVENTS_PER_STATE = 0xffff;

/**
 * Breadth-first exploration of every event sequence up to `depth` from `start`, deduplicating states
 * by the hash of their canonical key. Breadth-first makes the first violation found a shortest one;
 * a state reached by a violating event is not expanded further (the world is already broken there).
 */
export function explore<S, E>(model: Explorable<S, E>, start: S, opts: ExploreOptions): ExploreResult<E> {
  const collect = opts.collect ?? "first";
  const maxStates = opts.maxStates ?? Number.POSITIVE_INFINITY;
  const visited = new VisitedTable();
  const h: Hash64 = { hi: 0, lo: 0 };
  const found = new Map<InvariantName, Counterexample<E>>();
  const rootId = visited.insert(hashKey(model.key(start), h), -1, 0);
  let frontier: { state: S; id: number }[] = [{ state: start, id: rootId }];
  let transitions = 0;
  let depthExplored = 0;
  let truncated = false;
  let sinceProgress = 0;

  search: for (let level = 0; level < opts.depth && frontier.length > 0; level++) {
    const next: { state: S; id: number }[] = [];
    for (const { state, id } of frontier) {
      const events = model.events(state);
      if (events.length > MAX_EVENTS_PER_STATE) {
        throw new ModelBugError(`model offers ${events.length} events in one state; the checker stores event indices in 16 bits`);
      }
      for (let i = 0; i < events.length; i++) {
        const event = events[i] as E;
        const result = applyOrExplain(model, start, visited, id, state, event);
        transitions++;
        if (result.violations.length > 0) {
          // "first": one counterexample (the event's other violations show up when it is replayed).
          for (const v of collect === "first" ? result.violations.slice(0, 1) : result.violations) {
            if (found.has(v.invariant)) continue;
            found.set(v.invariant, { events: [...pathEvents(model, start, visited.pathTo(id)), event], invariant: v.invariant, violation: v });
          }
          if (collect === "first") break search;
          continue;
        }
        const child = visited.insert(hashKey(model.key(result.state), h), id, i);
        if (child < 0) continue;
        if (visited.size >= maxStates) {
          truncated = true;
          break search;
        }
        next.push({ state: result.state, id: child });
        if (opts.onProgress && ++sinceProgress >= 4096) {
          sinceProgress = 0;
          opts.onProgress(visited.size, transitions);
        }
      }
    }
    depthExplored = level + 1;
    frontier = next;
  }
  opts.onProgress?.(visited.size, transitions);
  const counterexamples = [...found.values()].sort((a, b) => a.events.length - b.events.length);
  return {
    verdict: counterexamples.length > 0 ? "violation" : "safe",
    counterexamples,
    states: visited.size,
    transitions,
    depthExplored,
    truncated,
    visitedBytes: visited.bytes,
  };
}

/**
 * model.apply, with a model exception turned into an internal error that names the event sequence
 * reaching it (so the model's developer can replay it); the original error is kept as the cause.
 */
function applyOrExplain<S, E>(model: Explorable<S, E>, start: S, visited: VisitedTable, id: number, state: S, event: E) {
  try {
    return model.apply(state, event);
  } catch (err) {
    let path: string;
    try {
      path = [...pathEvents(model, start, visited.pathTo(id)), event].map(eventKey).join(", ");
    } catch (pathErr) {
      // Reported inside the message rather than dropped: the original error stays the cause.
      path = `(path not replayable: ${pathErr instanceof Error ? pathErr.message : String(pathErr)}) … ${eventKey(event)}`;
    }
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new KvmxError(`the model threw while exploring [${path}]: ${what}`, "internal", { cause: err });
  }
}

/** Rebuilds the events of a path of event indices by replaying it from the start state. */
function pathEvents<S, E>(model: Explorable<S, E>, start: S, path: readonly number[]): E[] {
  const out: E[] = [];
  let state = start;
  for (const idx of path) {
    const event = model.events(state)[idx];
    if (event === undefined) throw new ModelBugError(`replaying a parent path: event #${idx} is not enabled any more (events() is not deterministic)`);
    out.push(event);
    state = model.apply(state, event).state;
  }
  return out;
}
