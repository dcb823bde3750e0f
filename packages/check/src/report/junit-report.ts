import type { CellResult, CheckReport } from "./check-report.js";
import { cellOutcome, cellWhere, counterexampleLines } from "./cell-outcome.js";
import { escapeHtml } from "./escape-html.js";

/**
 * The report as JUnit XML: a <testsuite> per backend, a <testcase> per cell (name: the cell id,
 * classname: the design). A violation is a <failure> holding the counterexample; n/a and
 * not-exercised cells are <skipped/>, and so are bounded cells (no violation found, but the search
 * was cut short: JUnit has no "incomplete", and a pass would hide it). A condition goes to <system-out>.
 */
export function renderJunit(report: CheckReport, opts: { name?: string } = {}): string {
  const suites = report.backends
    .map((backend) => ({ backend, cells: report.cells.filter((c) => c.backend === backend) }))
    .filter((s) => s.cells.length > 0);
  const total = counts(report.cells);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${xml(opts.name ?? "kvmx check")}" tests="${total.tests}" failures="${total.failures}" errors="0" skipped="${total.skipped}" time="${seconds(report.elapsedMs)}">`,
  ];
  for (const { backend, cells } of suites) {
    const c = counts(cells);
    const time = cells.reduce((t, x) => t + x.elapsedMs, 0);
    out.push(`  <testsuite name="${xml(backend)}" tests="${c.tests}" failures="${c.failures}" errors="0" skipped="${c.skipped}" time="${seconds(time)}">`);
    for (const cell of cells) out.push(...testcase(cell));
    out.push("  </testsuite>");
  }
  out.push("</testsuites>");
  return out.join("\n") + "\n";
}

function testcase(cell: CellResult): string[] {
  const o = cellOutcome(cell);
  const open = `    <testcase name="${xml(o.id)}" classname="${xml(cell.design)}" time="${seconds(cell.elapsedMs)}"`;
  if (o.status === "pass" && !cell.condition) return [`${open}/>`];
  const body: string[] = [];
  if (o.status === "skip" || o.status === "bounded") body.push(`      <skipped message="${xml(o.reason ?? o.summary)}"/>`);
  if (o.status === "fail") {
    const ce = cell.counterexample;
    const text = [
      `${cellWhere(cell)}: ${o.summary}`,
      ...(ce ? [ce.message, ...(ce.site ? [`site: ${ce.site}`] : []), ...(ce.alsoBroken ? [`also broken: ${ce.alsoBroken.join(", ")}`] : []), "events:", ...counterexampleLines(ce)] : []),
    ].join("\n");
    const message = ce ? `${o.summary}: ${ce.message}` : o.summary;
    body.push(`      <failure message="${xml(message)}" type="${xml(cell.invariant ?? "violation")}">${xml(text)}</failure>`);
  }
  if (cell.condition) body.push(`      <system-out>${xml(cell.condition)}</system-out>`);
  return [`${open}>`, ...body, "    </testcase>"];
}

function counts(cells: readonly CellResult[]) {
  const outcomes = cells.map(cellOutcome);
  return {
    tests: cells.length,
    failures: outcomes.filter((o) => o.status === "fail").length,
    skipped: outcomes.filter((o) => o.status === "skip" || o.status === "bounded").length,
  };
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

/** Text for XML content and attributes: characters XML 1.0 cannot hold dropped, markup escaped. */
const xml = (s: string): string => escapeHtml(s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, ""));
