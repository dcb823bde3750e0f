import type { InvariantName } from "@kvmx/core";
import { measureCost } from "../cost/cost-probe.js";
import type { CostWeights } from "../cost/weights.js";
import { explore, type Counterexample, type ExploreProgress } from "../engine/explore.js";
import { minimiseEvents } from "../engine/minimise.js";
import { replay } from "../engine/replay.js";
import type { CellResult, CounterexampleReport } from "../report/check-report.js";
import type { CellSpec } from "./cell.js";
import type { CheckProvider, CheckSubject } from "./provider.js";

export interface CellOptions {
  /** Longest event sequence explored; absent: to the fixpoint. */
  depth?: number;
  collect?: "first" | "per-invariant";
  maxStates?: number;
  maxSeconds?: number;
  /** Price the cell (cost probes). */
  cost?: boolean;
  weights?: CostWeights;
  onProgress?: (p: ExploreProgress) => void;
}

/** Checks one cell: n/a, or exploration + minimised, replayed counterexamples + cost. */
export function runCell(provider: CheckProvider, cell: CellSpec, opts: CellOptions): CellResult {
  const t0 = performance.now();
  const base = { design: cell.design, backend: cell.backend, host: { ...cell.host }, guest: { ...cell.guest } };
  const reason = provider.notApplicable(cell);
  if (reason !== undefined) {
    return { ...base, verdict: "n/a", reason, states: 0, transitions: 0, complete: true, depthReached: 0, frontier: 0, elapsedMs: performance.now() - t0 };
  }
  const subject = provider.subject(cell);
  const r = explore(subject.model, subject.start, {
    collect: opts.collect ?? "first",
    ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
    ...(opts.maxStates !== undefined ? { maxStates: opts.maxStates } : {}),
    ...(opts.maxSeconds !== undefined ? { maxSeconds: opts.maxSeconds } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  const reports = r.counterexamples.map((ce) => counterexampleReport(subject, ce));
  const result: CellResult = {
    ...base,
    verdict: r.verdict,
    states: r.states,
    transitions: r.transitions,
    complete: r.complete,
    depthReached: r.depthReached,
    frontier: r.frontier,
    statesPerDepth: r.statesPerDepth,
    elapsedMs: 0,
  };
  if (r.stoppedBy) result.stoppedBy = r.stoppedBy;
  if (r.diameter !== undefined) result.diameter = r.diameter;
  const [first, ...others] = reports;
  if (first) {
    result.invariant = first.invariant;
    result.counterexample = first;
    if (others.length > 0) result.otherCounterexamples = others;
  }
  if (opts.cost !== false) result.cost = measureCost(subject, opts.weights);
  result.elapsedMs = performance.now() - t0;
  return result;
}

/** Minimises, replays with the trace on, and writes the scenario text of one counterexample. */
export function counterexampleReport<S, E>(subject: CheckSubject<S, E>, ce: Counterexample<E>): CounterexampleReport {
  const events = minimiseEvents(subject.model, subject.start, ce.events, ce.invariant);
  const run = replay(subject.model, subject.start, events, { invariant: ce.invariant });
  const hit = run.firstViolation?.violation ?? ce.violation;
  // A replay of the scenario sees every violation of its events; the last event may break several invariants.
  const others = [...new Set(run.steps.flatMap((s) => s.violations.map((v) => v.invariant)))].filter((i) => i !== ce.invariant);
  const report: CounterexampleReport = {
    invariant: ce.invariant as InvariantName,
    message: hit.message,
    events: events as unknown[],
    failingStep: events.length - 1,
    scenario: subject.scenario(events, { violations: [ce.invariant, ...others] }),
    trace: run.steps.map((s) => ({ event: s.event as unknown, steps: s.trace })),
  };
  if (hit.site !== undefined) report.site = hit.site;
  if (others.length > 0) report.alsoBroken = others;
  return report;
}
