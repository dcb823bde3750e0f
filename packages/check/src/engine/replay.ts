import type { Explorable, InvariantName, TraceStep, Violation } from "@kvmx/core";
import { eventKey } from "./event-key.js";

export interface ReplayStep<E> {
  event: E;
  /** The world-switch steps this event ran (sites, live XCR0, R16–R31 owners). */
  trace: TraceStep[];
  violations: Violation[];
}

export interface ReplayResult<S, E> {
  steps: ReplayStep<E>[];
  state: S;
  /** First event (index into `events`) that broke an invariant, with that violation. */
  firstViolation?: { eventIndex: number; violation: Violation };
  /** Set when an event was not enabled in the state it was applied to; replay stops there. */
  disabledAt?: number;
}

/**
 * Applies `events` in order from `start`, recording every trace step. Stops after the first event
 * that breaks an invariant (or, with `invariant`, the first that breaks that one), or at the first
 * event the model does not offer in the state at hand.
 */
export function replay<S, E>(
  model: Explorable<S, E>,
  start: S,
  events: readonly E[],
  opts: { invariant?: InvariantName; trace?: boolean; requireEnabled?: boolean; variant?: number } = {},
): ReplayResult<S, E> {
  const steps: ReplayStep<E>[] = [];
  let state = start;
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as E;
    if (opts.requireEnabled !== false && !isEnabled(model, state, event)) return { steps, state, disabledAt: i };
    const trace: TraceStep[] = [];
    const result = model.apply(state, event, opts.trace === false ? undefined : trace, opts.variant ?? 0);
    steps.push({ event, trace, violations: result.violations });
    state = result.state;
    const hit = opts.invariant === undefined ? result.violations[0] : result.violations.find((v) => v.invariant === opts.invariant);
    if (hit) return { steps, state, firstViolation: { eventIndex: i, violation: hit } };
  }
  return { steps, state };
}

export function isEnabled<S, E>(model: Explorable<S, E>, state: S, event: E): boolean {
  const k = eventKey(event);
  return model.events(state).some((e) => eventKey(e) === k);
}
