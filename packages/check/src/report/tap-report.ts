import type { CheckReport } from "./check-report.js";
import { cellOutcome, cellWhere } from "./cell-outcome.js";
import { eventLabel } from "./chrome-trace.js";

/**
 * The report as TAP version 13, one test per cell in report order:
 *   ok N - <cell id> safe                                   (a condition replaces "safe": "safe unless …")
 *   not ok N - <cell id> violation (<invariant>)            with a YAML block: message, site, events
 *   ok N - <cell id> # SKIP not applicable: <reason>        (and not-exercised cells)
 *   not ok N - <cell id> safe≤D # TODO bounded search: …    a TODO test: TAP consumers do not count it
 *                                                           as a failure, but show it as not done
 * Only violations fail the plan, as only they make `kvmx check` exit 1.
 */
export function renderTap(report: CheckReport): string {
  const out = ["TAP version 13", `1..${report.cells.length}`];
  report.cells.forEach((cell, k) => {
    const n = k + 1;
    const o = cellOutcome(cell);
    const name = `${o.id} ${o.summary}`;
    if (o.status === "pass") out.push(`ok ${n} - ${tapText(name)}`);
    else if (o.status === "skip") out.push(`ok ${n} - ${tapText(o.id)} # SKIP ${tapText(o.reason ?? o.summary)}`);
    else if (o.status === "bounded") out.push(`not ok ${n} - ${tapText(name)} # TODO ${tapText(o.reason ?? "bounded")}`);
    else {
      out.push(`not ok ${n} - ${tapText(name)}`);
      const ce = cell.counterexample;
      const diag: [string, unknown][] = [
        ["cell", cellWhere(cell)],
        ["invariant", cell.invariant ?? ce?.invariant],
        ["message", ce?.message],
        ["site", ce?.site],
        ["also_broken", ce?.alsoBroken],
        ["condition", cell.condition],
        ["events", ce?.events.map(eventLabel)],
        ["failing_event", ce ? ce.failingStep + 1 : undefined],
        ["findings", cell.findings],
      ];
      out.push("  ---", ...diag.filter(([, v]) => v !== undefined).map(([k, v]) => yamlEntry(k, v)), "  ...");
    }
  });
  return out.join("\n") + "\n";
}

/** A test description on one line, its `#` escaped (TAP reads an unescaped `#` as a directive). */
const tapText = (s: string): string => s.replace(/\s*\n\s*/g, " ").replace(/\\/g, "\\\\").replace(/#/g, "\\#");

/** One key of the YAML diagnostic (indented two spaces): strings as JSON, which YAML reads as double-quoted scalars. */
function yamlEntry(key: string, value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? `  ${key}: []` : [`  ${key}:`, ...value.map((v) => `    - ${JSON.stringify(v)}`)].join("\n");
  return `  ${key}: ${JSON.stringify(value)}`;
}
