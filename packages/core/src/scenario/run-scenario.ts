/**
 * Replays a scenario on a fresh Machine, recording every step, and judges its expectations.
 * A scenario's outcome always comes from running the model.
 */
import { createMachine, type Machine } from "../kvm/machine.js";
import type { CostCounters, TraceStep, Violation, InvariantName } from "../kvm/explorable.js";
import { zeroCost } from "../kvm/explorable.js";
import { describeEvent, type KvmxEvent } from "../kvm/events.js";
import type { Scenario } from "./scenario-file.js";

export interface ScenarioEventResult {
  index: number;
  event: KvmxEvent;
  description: string;
  steps: TraceStep[];
  violations: Violation[];
  cost: CostCounters;
}

export interface ScenarioRun {
  scenario: Scenario;
  machine: Machine;
  events: ScenarioEventResult[];
  /** All violations, `step` renumbered to the global step index. */
  violations: (Violation & { event: number })[];
  /** Expectation failures, human-readable; empty when there is no expectation or it holds. */
  expectationFailures: string[];
  ok: boolean;
}

export function runScenario(s: Scenario): ScenarioRun {
  const machine = createMachine({
    backend: s.backend, design: s.design, host: { cpu: s.host.cpu, kernelApx: s.host.kernelApx },
    guest: { apx: s.guest.apx }, options: s.options, pre: s.pre,
  });
  let state = machine.initialState();
  const events: ScenarioEventResult[] = [];
  const violations: ScenarioRun["violations"] = [];
  let base = 0;
  s.events.forEach((event, index) => {
    const steps: TraceStep[] = [];
    const r = machine.apply(state, event, steps);
    state = r.state;
    events.push({ index, event, description: describeEvent(event), steps, violations: r.violations, cost: r.cost });
    for (const v of r.violations) violations.push({ ...v, step: base + v.step, event: index });
    base += steps.length;
  });
  const expectationFailures: string[] = [];
  const seen = new Set<InvariantName>(violations.map((v) => v.invariant));
  if (s.expect && "ok" in s.expect) {
    if (violations.length) expectationFailures.push(`expected no violation, got ${[...seen].join(", ")}`);
  } else if (s.expect) {
    for (const want of s.expect.violations) if (!seen.has(want)) expectationFailures.push(`expected a ${want} violation, none happened`);
    for (const got of seen) if (!s.expect.violations.includes(got)) expectationFailures.push(`unexpected ${got} violation`);
  }
  const ok = s.expect ? expectationFailures.length === 0 : violations.length === 0;
  return { scenario: s, machine, events, violations, expectationFailures, ok };
}

export const sumCost = (xs: readonly CostCounters[]): CostCounters =>
  xs.reduce((a, c) => {
    for (const k of Object.keys(a) as (keyof CostCounters)[]) a[k] += c[k];
    return a;
  }, zeroCost());
