/**
 * Replays a scenario on a fresh Machine, recording every step and what each event showed
 * (observations), and judges its expectations. A scenario's outcome always comes from running the model.
 */
import { InputError, ScenarioError } from "../errors.js";
import { createMachine, type Machine } from "../kvm/machine.js";
import type { CostCounters, TraceStep, Violation, InvariantName, Observation } from "../kvm/explorable.js";
import { zeroCost } from "../kvm/explorable.js";
import { describeEvent, type KvmxEvent } from "../kvm/events.js";
import type { Scenario } from "./scenario-file.js";
import { judgeEvent, judgeScenario, type ExpectationResult } from "./expectations.js";

export interface ScenarioEventResult {
  index: number;
  event: KvmxEvent;
  description: string;
  steps: TraceStep[];
  violations: Violation[];
  cost: CostCounters;
  /** What the event showed a guest or the VMM (guest reads, faults, ioctl results, GET_XSAVE2 images, s.regs). */
  observations: Observation[];
  /** The outcome of each of the event's own expectations. */
  expectations: ExpectationResult[];
}

export interface ScenarioRun {
  scenario: Scenario;
  machine: Machine;
  events: ScenarioEventResult[];
  /** All violations, `step` renumbered to the global step index. */
  violations: (Violation & { event: number })[];
  /** The outcome of the scenario's own expectations (violations over the run, the state after the last event). */
  expectations: ExpectationResult[];
  /** Failed expectations and unexpected violations, one line each with where the expectation is written; empty when all hold. */
  expectationFailures: string[];
  ok: boolean;
}

/**
 * Runs `s`. An event the model refuses (an InputError while applying it, e.g. a CR4 write the model
 * cannot represent) becomes a ScenarioError at the event's file:line:column.
 */
export function runScenario(s: Scenario): ScenarioRun {
  const machine = createMachine({
    backend: s.backend, design: s.design, host: { cpu: s.host.profile ?? s.host.cpu, kernelApx: s.host.kernelApx },
    guest: { apx: s.guest.apx }, options: s.options, pre: s.pre, ...(s.variant ? { variant: s.variant } : {}),
  });
  let state = machine.initialState();
  const events: ScenarioEventResult[] = [];
  const violations: ScenarioRun["violations"] = [];
  let base = 0;
  s.events.forEach((event, index) => {
    const steps: TraceStep[] = [];
    let r;
    try {
      r = machine.apply(state, event, steps);
    } catch (e) {
      if (e instanceof InputError && !(e instanceof ScenarioError)) throw new ScenarioError(e.message, locationOf(s.eventAt[index], s.file), { cause: e });
      throw e;
    }
    state = r.state;
    const observations = r.observations ?? [];
    const x = s.eventExpects[index];
    const expectations = x
      ? judgeEvent(x, { index, kind: event.kind, ...(event.kind === "guest-read" ? { reg: event.reg as string } : {}), observations, violations: r.violations, cost: r.cost, state }, s.backend)
      : [];
    events.push({ index, event, description: describeEvent(event), steps, violations: r.violations, cost: r.cost, observations, expectations });
    for (const v of r.violations) violations.push({ ...v, step: base + v.step, event: index });
    base += steps.length;
  });
  const seen = [...new Set<InvariantName>(violations.map((v) => v.invariant))];
  const expectations = s.expect ? judgeScenario(s.expect, seen, state, s.backend) : [];
  // A violation nobody expected fails the run, unless the scenario's own expectation speaks about
  // violations (it judged them above) or the event's own does.
  if (!s.expect?.violations) {
    for (const e of events) {
      if (e.violations.length === 0 || s.eventExpects[e.index]?.violations) continue;
      const names = [...new Set(e.violations.map((v) => v.invariant))];
      e.expectations.push({ event: e.index, key: "violations", ok: false, message: `unexpected ${names.join(", ")} violation${names.length > 1 ? "s" : ""}`, at: s.eventAt[e.index] ?? s.file });
    }
  }
  const failures: string[] = [];
  for (const e of events) for (const x of e.expectations) if (!x.ok) failures.push(`event ${e.index} (${e.description}): ${x.message} (${x.at})`);
  for (const x of expectations) if (!x.ok) failures.push(`${x.message} (${x.at})`);
  return { scenario: s, machine, events, violations, expectations, expectationFailures: failures, ok: failures.length === 0 };
}

/** "file:line:column" back into a location (the scenario keeps event positions as text). */
function locationOf(at: string | undefined, file: string): { file: string; line?: number; column?: number } {
  const m = at ? /^(.*):(\d+):(\d+)$/.exec(at) : null;
  return m ? { file: m[1]!, line: Number(m[2]), column: Number(m[3]) } : { file };
}

export const sumCost = (xs: readonly CostCounters[]): CostCounters =>
  xs.reduce((a, c) => {
    for (const k of Object.keys(a) as (keyof CostCounters)[]) a[k] += c[k];
    return a;
  }, zeroCost());
