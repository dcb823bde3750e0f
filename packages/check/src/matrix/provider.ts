import type { CostCounters, Explorable, InvariantName } from "@kvmx/core";
import type { CellSpec } from "./cell.js";

/**
 * What the checker needs from the model for one cell. The checker never imports a backend: the
 * caller (the CLI, a test) wires concrete backends into a CheckProvider.
 */
export interface CheckSubject<S = unknown, E = unknown> {
  model: Explorable<S, E>;
  /**
   * The model the search runs on, when it is not `model`: the same states and events, but it folds
   * some events into others (ApplyResult.folded) so it reaches fewer states. Counterexamples are
   * minimised, replayed and priced with `model`, which offers every event.
   */
  explore?: Explorable<S, E>;
  /** The start state: vCPU created, host and guest profile applied. */
  start: S;
  /**
   * A scenario file (YAML) that replays `events` from this start (core's scenario writer) under the
   * assumption valuation `variant` (default 0), expecting exactly `violations` (every invariant the
   * failing event breaks, the counterexample's first).
   */
  scenario(events: readonly E[], expect: { violations: readonly InvariantName[] }, variant?: number): string;
  /**
   * Whether a violation is the design's or comes from code every design with the same EGPR home
   * shares (docs/model.md#findings): absent means every violation is the design's.
   */
  classify?(events: readonly E[], invariant: InvariantName, variant: number): "violation" | "finding";
  /** An event's class (0–29, e.g. its kind) for grouping violations to classify (explore's `eventClass`). */
  eventClass?(event: E): number;
  /** The event runs no design code (explore's `designFree`). */
  designFree?(event: E): boolean;
  /**
   * False when the design's actions can never run in this cell (KVM keeps SEV-ES/TDX vCPUs on paths
   * of their own): its verdict then says nothing about the design ("not exercised"). Absent: true.
   */
  readonly exercised?: boolean;
  /** Representative round trips for the cost model (docs/model.md#costs). */
  costProbes(): readonly CostProbe<E>[];
}

/**
 * One priced round trip: `setup` brings the vCPU to a warm state (e.g. the guest enabled APX and
 * wrote R16–R31), then the counters of `trip` are the cost of one round trip of that kind — minus
 * those of `baseline` from the same warm state, when the trip cannot be isolated (a fastpath exit
 * that the event ends with an exit to userspace: trip = WRMSRNS + OUT, baseline = OUT).
 */
export interface CostProbe<E> {
  kind: CostKind;
  setup: readonly E[];
  trip: readonly E[];
  baseline?: readonly E[];
}
export type CostKind = "fastpath" | "full-exit";

export interface CheckProvider {
  /** Design names in matrix order (built-ins and any loaded from files). */
  readonly designs: readonly string[];
  /** Backend names in matrix order. */
  readonly backends: readonly string[];
  /**
   * Why a cell cannot exist (the backend masks APX, the design needs hardware the backend lacks,
   * the host CPU cannot give the guest APX), or undefined when it can. Derived from the profiles and
   * backends, never from a per-design table of answers.
   */
  notApplicable(cell: CellSpec): string | undefined;
  subject(cell: CellSpec): CheckSubject;
  /**
   * Drops what the provider kept while the cell was checked (e.g. the peers' runs of the findings
   * rule); runCell calls it when the cell is done, so a long matrix does not hold every cell's.
   */
  release?(cell: CellSpec): void;
  /** Where a design keeps R16–R31 (findings are grouped by it). */
  egprHome?(design: string): string | undefined;
  /** The assumption sweep every cell ran under (absent: the defaults only). */
  readonly sweep?: { mode: "each" | "all"; assumptions: string[] };
}

export type CostByKind = Partial<Record<CostKind, CostCounters>>;
