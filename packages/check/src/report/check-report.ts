import type { CostCounters, InvariantName, TraceStep } from "@kvmx/core";
import type { CellSpec } from "../matrix/cell.js";
import type { CostKind } from "../matrix/provider.js";

/** The JSON schema of `kvmx check --json` (and of shard files that `--merge` combines). */
export const SCHEMA_VERSION = 1;

export type Verdict = "safe" | "violation" | "n/a";

export interface CounterexampleReport {
  invariant: InvariantName;
  message: string;
  site?: string;
  /** Other invariants the failing event breaks as well. */
  alsoBroken?: InvariantName[];
  /** Events from the start state; the last one breaks the invariant. */
  events: unknown[];
  /** Index (in `events`) of the failing event — always the last. */
  failingStep: number;
  /** Scenario file (YAML) text; `kvmx run` replays it to the same violation. */
  scenario: string;
  /** Where the scenario was written (`--trace-out DIR`). */
  scenarioFile?: string;
  /** Chrome trace-event JSON written next to it. */
  chromeTraceFile?: string;
  /** The world-switch steps of every event (for the HTML timeline). */
  trace: { event: unknown; steps: TraceStep[] }[];
}

export interface CellCost {
  /** Counters of one round trip of each kind, for this cell's guest profile. */
  perTrip: Partial<Record<CostKind, CostCounters>>;
  /** Weighted estimate per kind (see cost/weights.ts), cycles. */
  cycles?: Partial<Record<CostKind, number>>;
  /** Set when a probe broke an invariant (the design is unsafe on that very trip; counters are still given). */
  note?: string;
}

export interface CellResult extends CellSpec {
  verdict: Verdict;
  /** Why the cell is n/a. */
  reason?: string;
  /** The invariant of the shortest counterexample. */
  invariant?: InvariantName;
  counterexample?: CounterexampleReport;
  /** Shortest counterexample of every other invariant broken (collect "per-invariant"). */
  otherCounterexamples?: CounterexampleReport[];
  cost?: CellCost;
  states: number;
  transitions: number;
  depthExplored: number;
  truncated: boolean;
  elapsedMs: number;
}

export interface CheckReport {
  schemaVersion: typeof SCHEMA_VERSION;
  depth: number;
  cells: CellResult[];
  /** Wall time of the run (a merge reports the slowest shard). */
  elapsedMs: number;
  statesPerSecond: number;
  /** Present on a shard's result. */
  shard?: { index: number; count: number };
  /** Design and backend order of the matrix. */
  designs: string[];
  backends: string[];
}

/** 0 when every requested cell is safe or n/a, 1 when any is a violation. */
export const reportFailed = (r: CheckReport): boolean => r.cells.some((c) => c.verdict === "violation");
