import { PROFILES, profileIndex, type Profile } from "../matrix/profiles.js";
import type { CellResult, CheckReport } from "./check-report.js";

/** The verdict matrix as the table and the HTML page lay it out: a row per design, a column per backend × profile. */
export interface VerdictGrid {
  columns: { backend: string; profile: Profile }[];
  rows: { design: string; cells: (CellResult | undefined)[] }[];
}

export function verdictGrid(report: CheckReport): VerdictGrid {
  const present = (b: string, p: Profile) => report.cells.some((c) => c.backend === b && profileIndex(c) === profileIndex(p));
  const columns = report.backends.flatMap((backend) => PROFILES.filter((p) => present(backend, p)).map((profile) => ({ backend, profile })));
  const designs = report.designs.filter((d) => report.cells.some((c) => c.design === d));
  const rows = designs.map((design) => ({
    design,
    cells: columns.map(({ backend, profile }) =>
      report.cells.find((c) => c.design === design && c.backend === backend && profileIndex(c) === profileIndex(profile)),
    ),
  }));
  return { columns, rows };
}

/**
 * The text of a matrix cell: "safe" (every reachable state checked), "safe≤5" (no violation in any
 * sequence of at most 5 events: the search was bounded), "violation (guest-integrity)", "n.a.".
 */
export function verdictText(c: CellResult | undefined): string {
  if (!c) return "";
  if (c.verdict === "n/a") return "n.a.";
  if (c.condition) return c.complete || c.verdict === "violation" ? c.condition : `${c.condition} (≤${c.depthReached})`;
  if (c.verdict === "violation") return `violation (${c.invariant ?? "?"})`;
  if (c.verdict === "not-exercised") return c.complete ? "not exercised" : `not exercised≤${c.depthReached}`;
  return c.complete ? "safe" : `safe≤${c.depthReached}`;
}
