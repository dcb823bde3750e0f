import type { InvariantName } from "@kvmx/core";
import { measureCost } from "../cost/cost-probe.js";
import type { CostWeights } from "../cost/weights.js";
import { eventKind } from "../engine/event-key.js";
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
  const classify = subject.classify?.bind(subject);
  const r = explore(subject.explore ?? subject.model, subject.start, {
    collect: opts.collect ?? "first",
    ...(classify ? { classify: (ce: Counterexample<unknown>, v: number) => classify(ce.events, ce.invariant, v) } : {}),
    ...(subject.eventClass ? { eventClass: subject.eventClass.bind(subject) } : {}),
    ...(subject.designFree ? { designFree: subject.designFree.bind(subject) } : {}),
    ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
    ...(opts.maxStates !== undefined ? { maxStates: opts.maxStates } : {}),
    ...(opts.maxSeconds !== undefined ? { maxSeconds: opts.maxSeconds } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  const reports = r.counterexamples.map((ce) => counterexampleReport(subject, ce));
  const result: CellResult = {
    ...base,
    verdict: r.verdict === "safe" && subject.exercised === false ? "not-exercised" : r.verdict,
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
  const variability = subject.model.variability;
  if (variability && r.variants.length > 1) {
    result.assumptionVerdicts = r.variants.map((x) => {
      const out: NonNullable<CellResult["assumptionVerdicts"]>[number] = { assumptions: { ...variability.describe(x.variant) }, verdict: x.verdict };
      const ce = x.counterexamples[0];
      if (ce) {
        out.invariant = ce.invariant;
        out.counterexample = x.variant === 0 && first ? first : counterexampleReport(subject, ce, x.variant);
      }
      return out;
    });
    const condition = conditionText(result.assumptionVerdicts);
    if (condition) result.condition = condition;
  }
  // Findings: violations of code every design of this EGPR home shares, one per kind, under any valuation.
  // A kind is the invariant, the site and the event kinds on the path: two causes that break the same
  // invariant at the same site (INIT zeroing regs[], or XCR0.APX 1→0 under another assumption) stay apart.
  const findings = new Map<string, FindingInstance>();
  for (const x of r.variants) {
    for (const f of x.findings) {
      const key = `${f.invariant}@${f.violation.site ?? ""}|${eventKinds(f.events)}`;
      const seen = findings.get(key);
      const assumptions = subject.model.variability?.describe(x.variant) ?? {};
      if (seen) {
        seen.assumptions.push({ ...assumptions });
        continue;
      }
      findings.set(key, { report: counterexampleReport(subject, f, x.variant), assumptions: [{ ...assumptions }] });
    }
  }
  if (findings.size > 0) result.findingInstances = [...findings.values()];
  if (opts.cost !== false) result.cost = measureCost(subject, opts.weights);
  provider.release?.(cell);
  result.elapsedMs = performance.now() - t0;
  return result;
}

/** The distinct kinds of a path's events, sorted ("get-xsave,init,set-xsave"). */
const eventKinds = (events: readonly unknown[]): string => [...new Set(events.map(eventKind))].sort().join(",");

/** One finding as a cell met it: its (minimised) counterexample and the valuations it occurs under. */
export interface FindingInstance {
  report: CounterexampleReport;
  /** Each entry: the assumptions that differ from the defaults in a valuation where it occurs ({} = the defaults). */
  assumptions: Record<string, string>[];
}

/**
 * The words for a verdict that depends on the assumptions: "safe if egprInitValue=zeros" (a violation
 * under the defaults, safe under that deviation), "safe unless setXsaveApxAbsent=init-zeros" (safe
 * under the defaults, a violation under that deviation); undefined when every valuation agrees.
 */
export function conditionText(vs: NonNullable<CellResult["assumptionVerdicts"]>): string | undefined {
  const base = vs[0];
  if (!base || vs.every((v) => v.verdict === base.verdict)) return undefined;
  const fmt = (a: Record<string, string>) => Object.entries(a).map(([k, v]) => `${k}=${v}`).join(" & ");
  const other = vs.slice(1).filter((v) => v.verdict !== base.verdict).map((v) => fmt(v.assumptions));
  return base.verdict === "safe" ? `safe unless ${other.join(" or ")}` : `safe if ${other.join(" or ")}`;
}

/** Minimises, replays with the trace on, and writes the scenario text of one counterexample. */
export function counterexampleReport<S, E>(subject: CheckSubject<S, E>, ce: Counterexample<E>, variant = 0): CounterexampleReport {
  const events = minimiseEvents(subject.model, subject.start, ce.events, ce.invariant, variant);
  const run = replay(subject.model, subject.start, events, { invariant: ce.invariant, variant });
  const hit = run.firstViolation?.violation ?? ce.violation;
  // A replay of the scenario sees every violation of its events; the last event may break several invariants.
  const others = [...new Set(run.steps.flatMap((s) => s.violations.map((v) => v.invariant)))].filter((i) => i !== ce.invariant);
  const report: CounterexampleReport = {
    invariant: ce.invariant as InvariantName,
    message: hit.message,
    events: events as unknown[],
    failingStep: events.length - 1,
    scenario: subject.scenario(events, { violations: [ce.invariant, ...others] }, variant),
    trace: run.steps.map((s) => ({ event: s.event as unknown, steps: s.trace })),
  };
  if (hit.site !== undefined) report.site = hit.site;
  if (others.length > 0) report.alsoBroken = others;
  return report;
}
