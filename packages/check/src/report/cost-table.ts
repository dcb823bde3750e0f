import type { CostCounters } from "@kvmx/core";
import { COST_COLUMNS } from "../cost/cost-counters.js";
import type { CostKind } from "../matrix/provider.js";
import type { CellResult, CheckReport } from "./check-report.js";

/** One line of the cost table: a design on a backend, one guest profile and round-trip kind. */
export interface CostRow {
  design: string;
  backend: string;
  guestApx: boolean;
  kind: CostKind;
  /** The cell's verdict: an unsafe design's cost is shown but marked. */
  verdict: CellResult["verdict"];
  counters?: CostCounters;
  cycles?: number;
  note?: string;
}

/**
 * The host profile the cost table prices: an APX CPU with today's (-mno-apxf) kernel, the first
 * deployment the design discussion is about (docs/facts.md#host-kernel-apx).
 */
export const COSTED_HOST = { cpuApx: true, kernelApx: false } as const;

export function costRows(report: CheckReport): CostRow[] {
  const rows: CostRow[] = [];
  for (const c of report.cells) {
    if (c.host.cpuApx !== COSTED_HOST.cpuApx || c.host.kernelApx !== COSTED_HOST.kernelApx || c.verdict === "n/a" || !c.cost) continue;
    for (const kind of ["fastpath", "full-exit"] as const) {
      const row: CostRow = { design: c.design, backend: c.backend, guestApx: c.guest.apx, kind, verdict: c.verdict };
      const counters = c.cost.perTrip[kind];
      if (counters) row.counters = counters;
      const cycles = c.cost.cycles?.[kind];
      if (cycles !== undefined) row.cycles = cycles;
      if (c.cost.note) row.note = c.cost.note;
      rows.push(row);
    }
  }
  return rows;
}

/** Header and string cells of the cost table (the CLI draws it with cli-table3, the HTML page as a <table>). */
export function costTableCells(rows: readonly CostRow[]): { head: string[]; body: string[][] } {
  const head = ["design", "backend", "guest", "trip", ...COST_COLUMNS.map((c) => c.title), "~cycles"];
  const body = rows.map((r) => [
    r.verdict === "violation" || r.note ? `${r.design} (unsafe)` : r.design,
    r.backend,
    r.guestApx ? "apx" : "no-apx",
    r.kind,
    ...COST_COLUMNS.map((c) => (r.counters ? String(r.counters[c.key]) : "—")),
    r.cycles !== undefined ? String(r.cycles) : "—",
  ]);
  return { head, body };
}
