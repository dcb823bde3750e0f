/**
 * Runs a corpus entry (corpus-entry.ts) through the checker: the pre-fix variant must break the
 * entry's invariant — the shortest counterexample, minimised, replayed with its trace and written as a
 * scenario that core's `runScenario` (what `kvmx run` does) reproduces — and the post-fix variant must
 * be safe with a complete search (explored to the fixpoint).
 */
import {
  INVARIANTS, createMachine, parseScenario, runScenario, scenarioToYaml,
  type InvariantName, type KvmxEvent, type Machine, type MachineState, type TraceStep, type VendorOps,
} from "@kvmx/core";
import { explore } from "../engine/explore.js";
import { minimiseEvents } from "../engine/minimise.js";
import { replay } from "../engine/replay.js";
import type { CorpusEntry } from "./corpus-entry.js";

export interface CorpusPreFixResult {
  /** The pre-fix variant broke an invariant. */
  readonly found: boolean;
  readonly invariant?: InvariantName;
  /** The violation's message and site at the last event. */
  readonly message?: string;
  readonly site?: string;
  /** The minimised counterexample. */
  readonly events: readonly KvmxEvent[];
  /** The counterexample as a scenario file (`kvmx run` replays it). */
  readonly scenario?: string;
  /** Running that scenario reproduced the invariant. */
  readonly replayed: boolean;
  /** The world-switch steps of each event of the counterexample. */
  readonly trace?: readonly { event: KvmxEvent; steps: readonly TraceStep[] }[];
  readonly states: number;
  readonly elapsedMs: number;
}

export interface CorpusPostFixResult {
  readonly verdict: "safe" | "violation";
  readonly complete: boolean;
  readonly states: number;
  readonly transitions: number;
  readonly diameter?: number;
  /** The first violation, when the post-fix variant is not safe. */
  readonly invariant?: InvariantName;
  readonly events?: readonly KvmxEvent[];
  readonly message?: string;
  readonly elapsedMs: number;
}

export interface CorpusResult {
  readonly id: string;
  readonly title: string;
  readonly commit: string;
  readonly kernel: string;
  readonly invariant: InvariantName;
  readonly preFix: CorpusPreFixResult;
  readonly postFix: CorpusPostFixResult;
  /** What did not go as the entry expects; empty when the entry holds. */
  readonly problems: readonly string[];
  readonly ok: boolean;
}

export interface RunCorpusOptions {
  /** Backend registry for replaying the emitted scenario. */
  backend(name: string): VendorOps | undefined;
  /** Bound for each search (a bounded post-fix search is a problem: it must reach the fixpoint). */
  maxSeconds?: number;
}

function machineFor(entry: CorpusEntry, which: "preFix" | "postFix"): Machine {
  const m = entry.machine;
  return createMachine({
    backend: m.backend, design: m.design, host: { cpu: m.host.cpu, kernelApx: m.host.kernelApx }, guest: { apx: m.guest.apx },
    variant: entry[which].variant, alphabet: entry.alphabet,
  });
}

/** The scenario file of the pre-fix counterexample (the variant inline, so the file stands alone). */
export function corpusScenario(entry: CorpusEntry, events: readonly KvmxEvent[], invariants: readonly InvariantName[]): string {
  const m = entry.machine;
  return scenarioToYaml(
    {
      name: `${entry.id}.pre-fix`,
      description: `${entry.title} (${entry.commit}): ${INVARIANTS[entry.invariant]}`,
      backend: m.backend.name,
      design: m.design,
      variant: entry.preFix.variant,
      host: { cpu: m.host.cpu, kernelApx: m.host.kernelApx },
      guest: { apx: m.guest.apx },
      events,
      expect: { violations: invariants },
    },
    `kvmx corpus: the bug ${entry.commit} fixed, found in the pre-fix variant; replay with: kvmx run <this file>`,
  );
}

function runPreFix(entry: CorpusEntry, opts: RunCorpusOptions): CorpusPreFixResult {
  const t0 = performance.now();
  const m = machineFor(entry, "preFix");
  const start: MachineState = m.initialState();
  const r = explore(m, start, { collect: "first", ...(opts.maxSeconds !== undefined ? { maxSeconds: opts.maxSeconds } : {}) });
  const ce = r.counterexamples[0];
  if (!ce) return { found: false, events: [], replayed: false, states: r.states, elapsedMs: performance.now() - t0 };
  const events = minimiseEvents(m, start, ce.events, ce.invariant);
  const run = replay(m, start, events, { invariant: ce.invariant });
  const hit = run.firstViolation?.violation ?? ce.violation;
  const all = [...new Set([ce.invariant, ...run.steps.flatMap((s) => s.violations.map((v) => v.invariant))])];
  const scenario = corpusScenario(entry, events, all);
  // The scenario must stand on its own: parse it back and run it as `kvmx run` does.
  const parsed = parseScenario(scenario, `${entry.dir}/pre-fix.counterexample.yaml`, { backend: opts.backend });
  const again = runScenario(parsed);
  const replayed = again.ok && again.violations.some((v) => v.invariant === ce.invariant);
  return {
    found: true, invariant: ce.invariant, message: hit.message, ...(hit.site ? { site: hit.site } : {}), events, scenario, replayed,
    trace: run.steps.map((s) => ({ event: s.event, steps: s.trace })), states: r.states, elapsedMs: performance.now() - t0,
  };
}

function runPostFix(entry: CorpusEntry, opts: RunCorpusOptions): CorpusPostFixResult {
  const t0 = performance.now();
  const m = machineFor(entry, "postFix");
  const r = explore(m, m.initialState(), { collect: "first", ...(opts.maxSeconds !== undefined ? { maxSeconds: opts.maxSeconds } : {}) });
  const ce = r.counterexamples[0];
  return {
    verdict: r.verdict, complete: r.complete, states: r.states, transitions: r.transitions,
    ...(r.diameter !== undefined ? { diameter: r.diameter } : {}),
    ...(ce ? { invariant: ce.invariant, events: ce.events, message: ce.violation.message } : {}),
    elapsedMs: performance.now() - t0,
  };
}

/** Runs one entry: pre-fix found (its invariant, short enough, replayable), post-fix complete and safe. */
export function runCorpusEntry(entry: CorpusEntry, opts: RunCorpusOptions): CorpusResult {
  const pre = runPreFix(entry, opts);
  const post = runPostFix(entry, opts);
  const problems: string[] = [];
  if (!pre.found) problems.push(`pre-fix: no violation found (${pre.states} states)`);
  else {
    if (pre.invariant !== entry.expect.invariant) problems.push(`pre-fix: broke ${pre.invariant}, the entry expects ${entry.expect.invariant}`);
    if (pre.events.length > entry.expect.maxLength) problems.push(`pre-fix: counterexample of ${pre.events.length} events, the entry expects at most ${entry.expect.maxLength}`);
    if (!pre.replayed) problems.push("pre-fix: the counterexample scenario does not reproduce the violation when run");
  }
  if (post.verdict !== "safe") problems.push(`post-fix: ${post.invariant} broken by ${JSON.stringify(post.events)} (${post.message})`);
  else if (!post.complete) problems.push(`post-fix: no violation, but the search did not reach the fixpoint (${post.states} states)`);
  return {
    id: entry.id, title: entry.title, commit: entry.commit, kernel: entry.kernel, invariant: entry.invariant,
    preFix: pre, postFix: post, problems, ok: problems.length === 0,
  };
}
