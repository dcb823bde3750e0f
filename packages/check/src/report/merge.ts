import { InputError } from "@kvmx/core";
import { cellComparator, cellId } from "../matrix/cell.js";
import { SCHEMA_VERSION, cellBounded, type CellResult, type CheckReport, type Finding } from "./check-report.js";

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
  // Findings: the shards numbered theirs on their own; merge equal ones and number them again.
  const byOldId = new Map<string, Finding>();
  const byKey = new Map<string, Finding>();
  for (const { report } of parts) {
    for (const f of report.findings ?? []) {
      const kinds = f.counterexample.events.map((e) => String((e as { kind?: unknown }).kind)).join(",");
      const key = f.explanation ? `${f.egprHome ?? ""}|${f.explanation.title}` : `${f.egprHome ?? ""}|${f.invariant}|${f.site ?? ""}|${kinds}`;
      let into = byKey.get(key);
      if (!into) byKey.set(key, (into = { ...f, id: `F${byKey.size + 1}`, cells: [], assumptions: [], observedAt: [] }));
      else if (f.counterexample.events.length < into.counterexample.events.length) Object.assign(into, { counterexample: f.counterexample, message: f.message, invariant: f.invariant, site: f.site });
      into.everyValuation &&= f.everyValuation;
      for (const o of f.observedAt) if (!into.observedAt.includes(o)) into.observedAt.push(o);
      for (const c of f.cells) if (!into.cells.includes(c)) into.cells.push(c);
      for (const a of f.assumptions) if (!into.assumptions.some((x) => JSON.stringify(x) === JSON.stringify(a))) into.assumptions.push(a);
      byOldId.set(`${report.shard?.index ?? 0}:${f.id}`, into);
    }
  }
  for (const { report } of parts) {
    for (const c of report.cells) {
      if (!c.findings) continue;
      const mine = merged.find((m) => cellId(m) === cellId(c));
      if (mine === c) mine.findings = c.findings.map((id) => byOldId.get(`${report.shard?.index ?? 0}:${id}`)?.id ?? id);
    }
  }
  const elapsedMs = Math.max(...parts.map((p) => p.report.elapsedMs));
  const states = merged.reduce((n, c) => n + c.states, 0);
  return {
    schemaVersion: SCHEMA_VERSION,
    ...(first.report.depth !== undefined ? { depth: first.report.depth } : {}),
    complete: merged.every((c) => !cellBounded(c)),
    findings: [...byKey.values()],
    ...(first.report.sweep ? { sweep: first.report.sweep } : {}),
    designs,
    backends,
    cells: merged,
    elapsedMs,
    statesPerSecond: elapsedMs > 0 ? Math.round((states / elapsedMs) * 1000) : 0,
  };
}
