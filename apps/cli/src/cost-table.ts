import { costRows, costTableCells, type CheckReport } from "@kvmx/check";
import pc from "picocolors";
import { renderTable } from "./table.js";

/**
 * The cost table within 100 columns: too wide for one, it splits into parts that repeat the design,
 * backend, guest and trip columns. `kvmx check` prints the same table under its verdicts.
 */
export function renderCostTable(report: CheckReport, colour: boolean): string {
  const rows = costRows(report);
  if (rows.length === 0) return "";
  const c = colour ? pc : pc.createColors(false);
  const { head, body } = costTableCells(rows);
  return renderTable({ head: head.map((h) => c.bold(h)), rows: body, keyColumns: 4 });
}
