import type { Explorable, TraceStep, Violation } from "./explorable.js";

export interface AppliedEvents<S> {
  state: S;
  /** One trace per event, in order. */
  traces: TraceStep[][];
  violations: Violation[];
}

/** Applies `events` in order from `state` (untouched), keeping each event's trace and every violation. */
export function applyEvents<S, E>(model: Explorable<S, E>, events: readonly E[], state: S): AppliedEvents<S> {
  const traces: TraceStep[][] = [];
  const violations: Violation[] = [];
  for (const event of events) {
    const trace: TraceStep[] = [];
    const r = model.apply(state, event, trace);
    state = r.state;
    traces.push(trace);
    violations.push(...r.violations);
  }
  return { state, traces, violations };
}
