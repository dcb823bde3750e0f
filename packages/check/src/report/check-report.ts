import type { CostCounters, InvariantName, TraceStep } from "@kvmx/core";
import type { CellSpec } from "../matrix/cell.js";
import type { CostKind } from "../matrix/provider.js";

/**
 * The JSON schema of `kvmx check --json` (and of shard files that `--merge` combines). Version 2: cells
 * say whether their search was complete (`complete`, `depthReached`, `frontier`, `diameter`).
 */
export const SCHEMA_VERSION = 2;

/**
 * "not-exercised": no violation, but the design's actions never ran in this cell (KVM keeps the
 * backend's protected vCPUs on paths of their own), so the cell says nothing about the design.
 */
export type Verdict = "safe" | "violation" | "n/a" | "not-exercised";

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
  /**
   * The verdict under every assumption valuation the check swept (valuation 0, the defaults, first):
   * present when more than one was swept. `assumptions` lists where a valuation departs from the defaults.
   */
  assumptionVerdicts?: { assumptions: Record<string, string>; verdict: "safe" | "violation"; invariant?: InvariantName; counterexample?: CounterexampleReport }[];
  /** When the verdict depends on the assumptions: e.g. "safe if egprInitValue=zeros". Absent: robust. */
  condition?: string;
  /** Findings this cell met (violations of code every design of its EGPR home shares); ids into CheckReport.findings. */
  findings?: string[];
  /** Set while a cell is assembled, replaced by `findings` ids in the report. */
  findingInstances?: FindingInstanceReport[];
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

/** A finding as one cell met it (run-cell.ts). */
export interface FindingInstanceReport {
  report: CounterexampleReport;
  assumptions: Record<string, string>[];
}

/**
 * A design-independent finding, reported once: a violation every design keeping R16–R31 in the same
 * place breaks the same way (docs/model.md#findings), with the cells that met it.
 */
export interface Finding {
  id: string;
  invariant: InvariantName;
  site?: string;
  /** Where the designs that share it keep R16–R31. */
  egprHome?: string;
  message: string;
  /** The shortest counterexample among the cells (minimised, replayable). */
  counterexample: CounterexampleReport;
  /** The cells (cellId) that met it. */
  cells: string[];
  /** The assumption valuations under which it occurs (departures from the defaults; {} = the defaults). */
  assumptions: Record<string, string>[];
  /** It occurs under every valuation each of its cells swept (robust), not only under some. */
  everyValuation: boolean;
  /** Every place it was observed ("uapi-truth at user:KVM_GET_XSAVE2", …); the counterexample shows the first. */
  observedAt: string[];
  /** What KVM does, what the architecture says, the KVM function, sources, severity — when known. */
  explanation?: FindingExplanation;
}

export interface FindingExplanation {
  title: string;
  kvm: string;
  architecture: string;
  function: string;
  sources: string[];
  severity: string;
  /** Where it is written up in the project's docs. */
  doc?: string;
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
  /** Design-independent findings, each once. */
  findings: Finding[];
  /** The assumptions the check swept (each with its alternatives); absent when it checked the defaults only. */
  sweep?: { mode: "each" | "all"; assumptions: string[] };
}

/** Any cell has a violation. */
export const reportFailed = (r: CheckReport): boolean => r.cells.some((c) => c.verdict === "violation");
/** Some safe cell's search was bounded: no violation found, but not every state was explored. */
/** A cell whose "no violation" rests on a bounded search (safe or not exercised, but not complete). */
export const cellBounded = (c: CellResult): boolean => (c.verdict === "safe" || c.verdict === "not-exercised") && !c.complete;

export const reportIncomplete = (r: CheckReport): boolean => r.cells.some(cellBounded);
