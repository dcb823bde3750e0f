/**
 * @kvmx/check: explores every EGPR switch design against KVM's invariants (docs/model.md#invariants), finds and
 * minimises counterexamples, prices the designs, and renders the results. It receives the backends it
 * runs on through a CheckProvider; it never imports one.
 */
export * from "./engine/state-hash.js";
export * from "./engine/visited-table.js";
export * from "./engine/explore.js";
export * from "./engine/event-key.js";
export * from "./engine/replay.js";
export * from "./engine/minimise.js";
export * from "./matrix/profiles.js";
export * from "./matrix/cell.js";
export * from "./matrix/provider.js";
export * from "./matrix/shard.js";
export * from "./matrix/run-cell.js";
export * from "./matrix/run-matrix.js";
export * from "./matrix/check-worker.js";
export * from "./cost/cost-counters.js";
export * from "./cost/weights.js";
export * from "./cost/cost-probe.js";
export * from "./report/check-report.js";
export * from "./report/findings.js";
export * from "./report/read-report.js";
export * from "./report/merge.js";
export * from "./report/verdict-grid.js";
export * from "./report/cost-table.js";
export * from "./report/chrome-trace.js";
export * from "./report/timeline-svg.js";
export * from "./report/html-report.js";
export * from "./report/cell-outcome.js";
export * from "./report/tap-report.js";
export * from "./report/junit-report.js";
export * from "./machine/machine-provider.js";
export * from "./machine/machine-scenario.js";
export * from "./corpus/corpus-entry.js";
export * from "./corpus/run-corpus.js";
