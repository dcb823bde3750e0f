import { INVARIANTS, Tag } from "@kvmx/core";
import { cellId } from "../matrix/cell.js";
import { profileLabel, profileTag } from "../matrix/profiles.js";
import { DEFAULT_WEIGHTS, type CostWeights } from "../cost/weights.js";
import type { CellResult, CheckReport, CounterexampleReport, Finding } from "./check-report.js";
import { eventLabel } from "./chrome-trace.js";
import { COSTED_HOST, costRows, costTableCells } from "./cost-table.js";
import { escapeHtml } from "./escape-html.js";
import { findingValuationText } from "./findings.js";
import { tagColour, timelineSvg } from "./timeline-svg.js";
import { verdictGrid, verdictText } from "./verdict-grid.js";

/** Matrix colours (the screenshot test looks for them). */
export const VERDICT_COLOURS = {
  safe: { bg: "#c8f0cf", fg: "#0f5223" },
  violation: { bg: "#f9c9c3", fg: "#8c1d13" },
  "n/a": { bg: "#e3e3e3", fg: "#555555" },
  "not-exercised": { bg: "#eef2d0", fg: "#55600f" },
} as const;

/** A safe verdict that some swept assumption valuation breaks ("safe unless …"). */
export const CONDITIONAL_COLOUR = { bg: "#fff1c2", fg: "#6b4a00" } as const;

/**
 * One self-contained HTML page (no external scripts, styles or fonts): the verdict matrix, each
 * counterexample with its event list and SVG timeline, and the cost table with its weights.
 */
export function renderHtmlReport(report: CheckReport, opts: { title?: string; weights?: CostWeights } = {}): string {
  const title = opts.title ?? "kvmx check";
  const grid = verdictGrid(report);
  const ces = report.cells.flatMap((c) =>
    [c.counterexample, ...(c.otherCounterexamples ?? [])].filter((x): x is CounterexampleReport => x !== undefined).map((ce, k) => ({ cell: c, ce, anchor: `${cellId(c)}-${k}` })),
  );
  const h: string[] = [];
  h.push(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>`);
  h.push(`<style>${STYLE}</style></head><body>`);
  h.push(`<h1>${escapeHtml(title)}</h1>`);
  const counts = { safe: 0, violation: 0, "n/a": 0, "not-exercised": 0 };
  for (const c of report.cells) counts[c.verdict]++;
  const search = report.complete
    ? "every explored cell searched to the fixpoint (complete)"
    : report.depth !== undefined
      ? `bounded: sequences of at most ${report.depth} events`
      : "bounded: some cells stopped at a state or time limit";
  const swept = report.sweep ? ` · assumptions swept (${report.sweep.mode}): ${report.sweep.assumptions.join(", ")}` : " · default assumptions";
  h.push(
    `<p class="summary">${escapeHtml(search)}${escapeHtml(swept)} · ${report.cells.length} cells: ${counts.safe} safe, ${counts.violation} violation, ` +
      `${counts["not-exercised"]} not exercised, ${counts["n/a"]} n/a · ${report.findings.length} finding${report.findings.length === 1 ? "" : "s"} · ` +
      `${report.cells.reduce((n, c) => n + c.states, 0).toLocaleString("en")} states in ${(report.elapsedMs / 1000).toFixed(2)} s (${report.statesPerSecond.toLocaleString("en")} states/s)</p>`,
  );
  // The legends first: what the matrix columns and the timelines' colours mean.
  h.push(`<div class="legends"><p class="legend">${PROFILE_LEGEND}</p>${timelineLegend()}</div>`);
  // The matrix.
  h.push(`<h2>Verdict matrix</h2><div class="scroll"><table class="matrix"><thead><tr><th rowspan="2">design</th>`);
  for (const b of report.backends) {
    const span = grid.columns.filter((c) => c.backend === b).length;
    if (span > 0) h.push(`<th colspan="${span}">${escapeHtml(b)}</th>`);
  }
  h.push(`</tr><tr>`);
  for (const col of grid.columns) h.push(`<th title="${escapeHtml(profileLabel(col.profile))}">${escapeHtml(profileTag(col.profile))}</th>`);
  h.push(`</tr></thead><tbody>`);
  for (const row of grid.rows) {
    h.push(`<tr><th class="design">${escapeHtml(row.design)}</th>`);
    row.cells.forEach((c) => h.push(matrixCell(c)));
    h.push(`</tr>`);
  }
  h.push(`</tbody></table></div>`);
  // Findings: what every design of an EGPR home shares, once each.
  h.push(`<h2>Findings</h2>`);
  if (report.findings.length === 0) h.push(`<p>None: no violation came from code every design shares.</p>`);
  for (const f of report.findings) h.push(findingSection(f, report));
  // Counterexamples.
  h.push(`<h2>Counterexamples</h2>`);
  if (ces.length === 0) h.push(`<p>None: no explored cell has a violation${report.complete ? "" : " (within the bounds above)"}.</p>`);
  for (const { cell, ce, anchor } of ces) {
    h.push(`<section class="ce" id="${escapeHtml(anchor)}"><h3>${escapeHtml(`${cell.design} on ${cell.backend}, ${profileLabel(cell)}`)}: <span class="inv">${escapeHtml(ce.invariant)}</span>${ce.alsoBroken ? ` <small>(also ${escapeHtml(ce.alsoBroken.join(", "))})</small>` : ""}</h3>`);
    h.push(`<p class="why">${escapeHtml(INVARIANTS[ce.invariant] ?? "")}</p>`);
    h.push(`<p>${escapeHtml(ce.message)}${ce.site ? ` <code>@ ${escapeHtml(ce.site)}</code>` : ""}</p><ol class="events">`);
    ce.events.forEach((e, i) => h.push(`<li${i === ce.failingStep ? ` class="failing"` : ""}><code>${escapeHtml(eventLabel(e))}</code>${i === ce.failingStep ? " ← breaks" : ""}</li>`));
    h.push(`</ol>`);
    h.push(replay(ce, anchor));
    h.push(`<div class="scroll">${timelineSvg(ce)}</div>`);
    h.push(`<details><summary>scenario file</summary><pre>${escapeHtml(ce.scenario)}</pre></details></section>`);
  }
  // Cost.
  const rows = costRows(report);
  h.push(`<h2>Cost per round trip</h2><p>Host: APX CPU, ${COSTED_HOST.kernelApx ? "-mapxf" : "today's"} kernel. Counters come from running the model; ~cycles weighs them with the table below.</p>`);
  if (rows.length > 0) {
    const { head, body } = costTableCells(rows);
    h.push(`<div class="scroll"><table class="cost"><thead><tr>${head.map((x) => `<th>${escapeHtml(x)}</th>`).join("")}</tr></thead><tbody>`);
    for (const r of body) h.push(`<tr>${r.map((x) => `<td>${escapeHtml(x)}</td>`).join("")}</tr>`);
    h.push(`</tbody></table></div>`);
  } else h.push(`<p>No priced cells in this run.</p>`);
  const w = opts.weights ?? DEFAULT_WEIGHTS;
  h.push(`<details><summary>cycle weights</summary><table class="cost"><tbody>`);
  for (const [k, v] of Object.entries(w)) h.push(`<tr><td>${escapeHtml(k)}</td><td>${v.cycles}</td><td>${escapeHtml(v.source)}</td></tr>`);
  h.push(`</tbody></table></details>`);
  h.push(`</body></html>\n`);
  return h.join("\n");
}

function findingSection(f: Finding, report: CheckReport): string {
  const when = findingValuationText(f, report);
  const ce = f.counterexample;
  const x = f.explanation;
  const h: string[] = [];
  h.push(`<section class="ce finding" id="finding-${escapeHtml(f.id)}"><h3>${escapeHtml(f.id)}: ${escapeHtml(x?.title ?? f.message)} <span class="inv">${escapeHtml(f.observedAt.join(", "))}</span></h3>`);
  if (x) {
    h.push(`<dl><dt>KVM</dt><dd>${escapeHtml(x.kvm)} <code>${escapeHtml(x.function)}</code></dd><dt>Architecture</dt><dd>${escapeHtml(x.architecture)}</dd>`);
    h.push(`<dt>Severity</dt><dd>${escapeHtml(x.severity)}</dd><dt>Sources</dt><dd>${x.sources.map((s) => `<code>${escapeHtml(s)}</code>`).join(" ")}</dd></dl>`);
  } else h.push(`<p>${escapeHtml(f.message)}${f.site ? ` <code>@ ${escapeHtml(f.site)}</code>` : ""}</p>`);
  h.push(`<p>Shared by every design keeping R16–R31 in ${escapeHtml(f.egprHome ?? "the same place")}; met in ${f.cells.length} cell${f.cells.length === 1 ? "" : "s"} under ${escapeHtml(when)}.</p><ol class="events">`);
  ce.events.forEach((e, i) => h.push(`<li${i === ce.failingStep ? ` class="failing"` : ""}><code>${escapeHtml(eventLabel(e))}</code>${i === ce.failingStep ? " ← breaks" : ""}</li>`));
  h.push(`</ol>${replay(ce, `finding-${f.id}`)}<div class="scroll">${timelineSvg(ce)}</div>`);
  h.push(`<details><summary>cells</summary><p>${f.cells.map((c) => `<code>${escapeHtml(c)}</code>`).join(" ")}</p></details></section>`);
  return h.join("\n");
}

function matrixCell(c: CellResult | undefined): string {
  if (!c) return `<td></td>`;
  const col = c.verdict === "safe" && c.condition ? CONDITIONAL_COLOUR : VERDICT_COLOURS[c.verdict];
  const search = c.complete ? "complete" : `bounded (${c.stoppedBy ?? "depth"}) at ${c.depthReached} events`;
  const tip = c.verdict === "n/a" ? (c.reason ?? "") : `${c.states} states, ${c.transitions} transitions, ${search}`;
  const found = c.findings?.length ? `<br><small>${c.findings.map((id) => `<a href="#finding-${escapeHtml(id)}">${escapeHtml(id)}</a>`).join(" ")}</small>` : "";
  // Two lines for a violation ("violation" / invariant) keep the twelve-odd columns narrow.
  const body =
    c.verdict === "violation"
      ? `<a href="#${escapeHtml(cellId(c))}-0">violation<br><small>${escapeHtml(c.invariant ?? "?")}</small></a>${c.condition ? `<br><small>${escapeHtml(c.condition)}</small>` : ""}`
      : escapeHtml(verdictText(c));
  return `<td class="v" style="background:${col.bg};color:${col.fg}" title="${escapeHtml(tip)}">${body}${found}</td>`;
}

const PROFILE_LEGEND =
  "Columns: H- host CPU without APX · H+ APX CPU, today's kernel · Hk APX CPU, kernel built with -mapxf · g+/g- guest CPUID with/without APX";

/**
 * How to replay a counterexample: `kvmx run FILE` when --trace-out wrote its scenario file; otherwise
 * a shell snippet that writes the scenario (the exact text `kvmx run` accepts) and runs it.
 */
function replay(ce: CounterexampleReport, anchor: string): string {
  if (ce.scenarioFile) return `<p>Replay: <code>kvmx run ${escapeHtml(ce.scenarioFile)}</code></p>`;
  const file = `${anchor}.scenario.yaml`;
  const cmd = `cat > '${file}' <<'KVMX_SCENARIO'\n${ce.scenario.trimEnd()}\nKVMX_SCENARIO\nkvmx run '${file}'`;
  return `<p>Replay (paste into a shell; <code>kvmx check --trace-out DIR</code> writes the files instead):</p><pre class="replay">${escapeHtml(cmd)}</pre>`;
}

function timelineLegend(): string {
  const item = (colour: string, label: string) => `<span class="sw" style="background:${colour}"></span>${escapeHtml(label)}`;
  return (
    `<p class="legend">Timelines: one column per step, the site's name at its foot. R16–R31 owner: ${item(tagColour(Tag.init), "init")} ` +
    `${item(tagColour(Tag.hostUser), "host user (VMM)")} ${item(tagColour(Tag.hostKernel), "host kernel")} ${item(tagColour(Tag.guest(0)), "guest vCPU0")} ` +
    `${item(tagColour(Tag.guest(1)), "guest vCPU1")} · the pink line is the live XCR0.APX bit · a red outline, dashed line and red site name mark the failing step</p>`
  );
}

const STYLE = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#212121;background:#fafafa}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:8px 0}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #cfd8dc;padding:4px 8px;text-align:left;white-space:nowrap}
table.matrix td.v{font-weight:600;min-width:64px;font-size:13px}table.matrix td.v small{font-weight:500}table.matrix th.design{background:#f5f5f5}
td.v a{color:inherit}.scroll{overflow-x:auto;max-width:100%}.summary,.legend{color:#455a64}
section.ce{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:8px 12px;margin:12px 0}
.inv{color:#8c1d13}.why{color:#546e7a;margin:2px 0}ol.events li.failing{color:#8c1d13;font-weight:600}
.sw{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:middle;border:1px solid #9e9e9e}
section.finding dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0}section.finding dt{font-weight:600;color:#455a64}section.finding dd{margin:0}
pre{background:#f5f5f5;padding:8px;overflow-x:auto}code{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
`;
