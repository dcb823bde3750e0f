import { InputError, type TraceStep } from "@kvmx/core";
import { SCHEMA_VERSION, type CellResult, type CheckReport, type CounterexampleReport } from "./check-report.js";

/**
 * Reads a `kvmx check --json` result (a shard, for `--merge`). Checks the shape that merging and
 * rendering rely on; u64 values written as "0x…" strings (trace XCR0s) come back as bigints.
 */
export function readReport(text: string, file: string): CheckReport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new InputError(`not JSON: ${err instanceof Error ? err.message : String(err)}`, { file }, { cause: err });
  }
  const fail = (what: string): never => {
    throw new InputError(`not a kvmx check result: ${what}`, { file });
  };
  if (!isObject(data)) return fail("expected an object");
  if (data.schemaVersion !== SCHEMA_VERSION) return fail(`schemaVersion must be ${SCHEMA_VERSION}, got ${JSON.stringify(data.schemaVersion)}`);
  if (data.depth !== undefined && typeof data.depth !== "number") return fail("depth must be a number when present");
  if (typeof data.complete !== "boolean") return fail("complete missing");
  if (!Array.isArray(data.cells)) return fail("cells missing");
  data.cells.forEach((c, i) => {
    if (!isObject(c)) return fail(`cells[${i}] is not an object`);
    if (typeof c.design !== "string" || typeof c.backend !== "string") fail(`cells[${i}] lacks design/backend`);
    if (!isObject(c.host) || typeof c.host.cpuApx !== "boolean" || typeof c.host.kernelApx !== "boolean") fail(`cells[${i}].host`);
    if (!isObject(c.guest) || typeof c.guest.apx !== "boolean") fail(`cells[${i}].guest`);
    if (c.verdict !== "safe" && c.verdict !== "violation" && c.verdict !== "n/a" && c.verdict !== "not-exercised") fail(`cells[${i}].verdict`);
    if (typeof c.complete !== "boolean") fail(`cells[${i}].complete`);
    return undefined;
  });
  const report = data as unknown as CheckReport;
  if (!Array.isArray(report.findings)) report.findings = [];
  for (const cell of report.cells) reviveCell(cell);
  report.designs = Array.isArray(data.designs) ? (data.designs as string[]) : [...new Set(report.cells.map((c) => c.design))];
  report.backends = Array.isArray(data.backends) ? (data.backends as string[]) : [...new Set(report.cells.map((c) => c.backend))];
  return report;
}

function reviveCell(cell: CellResult): void {
  const ces: CounterexampleReport[] = [...(cell.counterexample ? [cell.counterexample] : []), ...(cell.otherCounterexamples ?? [])];
  for (const ce of ces) {
    for (const ev of ce.trace ?? []) {
      for (const step of ev.steps as (TraceStep & { xcr0: bigint | string })[]) {
        if (typeof step.xcr0 === "string") step.xcr0 = BigInt(step.xcr0);
      }
    }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
