import type { CostCounters, InvariantName, TraceStep } from "@kvmx/core";
import type { CellSpec } from "../matrix/cell.js";
import type { CostKind } from "../matrix/provider.js";

/**
 * The JSON schema of `kvmx check --json` (and of shard files that `--merge` combines). Version 2: cells
 * say whether their search was complete (`complete`, `depthReached`, `frontier`, `diameter`).
 */
export const SCHEMA_VERSION = 2;

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
  /**
   * True when every reachable state was explored: "safe" then holds for event sequences of any
   * length. False for a search cut short by --depth, --max-states or --max-seconds ("safe≤N").
   * A violation is definite whatever this says (the search stops at the first one).
   */
  complete: boolean;
  /** What cut the search short. */
  stoppedBy?: "depth" | "max-states" | "max-seconds";
  /** Deepest level (events from the start) fully explored. */
  depthReached: number;
  /** States found but not explored when the search stopped (0 when complete). */
  frontier: number;
  /** When complete: the depth at which the last new state appeared (the fixpoint's depth). */
  diameter?: number;
  /** New states per depth (the start state is depth 0). */
  statesPerDepth?: number[];
  elapsedMs: number;
}

export interface CheckReport {
  schemaVersion: typeof SCHEMA_VERSION;
  /** The --depth bound, absent when the search ran to the fixpoint. */
  depth?: number;
  /** Every explored cell's search was complete (no bound cut one short). */
  complete: boolean;
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

/** Any cell has a violation. */
export const reportFailed = (r: CheckReport): boolean => r.cells.some((c) => c.verdict === "violation");
/** Some safe cell's search was bounded: no violation found, but not every state was explored. */
export const reportIncomplete = (r: CheckReport): boolean => r.cells.some((c) => c.verdict === "safe" && !c.complete);
