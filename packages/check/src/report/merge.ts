import { InputError } from "@kvmx/core";
import { cellComparator, cellId } from "../matrix/cell.js";
import { SCHEMA_VERSION, type CellResult, type CheckReport } from "./check-report.js";

/**
 * Combines shard results (`kvmx check --shard I/N --json`) into one report of the same schema. The
 * shards ran in parallel, so the merged wall time is the slowest shard's and the rate is the total
 * states over that time. A cell present twice must carry the same verdict.
 */
export function mergeReports(parts: readonly { report: CheckReport; file: string }[]): CheckReport {
  const first = parts[0];
  if (!first) throw new InputError("--merge needs at least one result file", { file: "(none)" });
  const designs: string[] = [];
  const backends: string[] = [];
  const cells = new Map<string, CellResult>();
  for (const { report, file } of parts) {
    if (report.depth !== first.report.depth) {
      const d = (x: number | undefined) => (x === undefined ? "the fixpoint" : `depth ${x}`);
      throw new InputError(`${d(report.depth)} differs from ${first.file}'s ${d(first.report.depth)}`, { file });
    }
    for (const d of report.designs) if (!designs.includes(d)) designs.push(d);
    for (const b of report.backends) if (!backends.includes(b)) backends.push(b);
    for (const c of report.cells) {
      const id = cellId(c);
      const seen = cells.get(id);
      if (seen && seen.verdict !== c.verdict) {
        throw new InputError(`cell ${id} is ${c.verdict} here but ${seen.verdict} in another file`, { file });
      }
      if (!seen) cells.set(id, c);
    }
  }
  const merged = [...cells.values()].sort(cellComparator(designs, backends));
  const elapsedMs = Math.max(...parts.map((p) => p.report.elapsedMs));
  const states = merged.reduce((n, c) => n + c.states, 0);
  return {
    schemaVersion: SCHEMA_VERSION,
    ...(first.report.depth !== undefined ? { depth: first.report.depth } : {}),
    complete: merged.every((c) => c.verdict !== "safe" || c.complete),
    designs,
    backends,
    cells: merged,
    elapsedMs,
    statesPerSecond: elapsedMs > 0 ? Math.round((states / elapsedMs) * 1000) : 0,
  };
}
