import { cellId } from "../matrix/cell.js";
import { profileLabel } from "../matrix/profiles.js";
import { eventLabel } from "./chrome-trace.js";
import type { CellResult, CounterexampleReport } from "./check-report.js";

/**
 * A cell as one test of a test report (TAP, JUnit): what a test runner's words make of its verdict.
 * "pass" safe (to the fixpoint), "fail" a violation, "skip" n/a or not exercised (the cell says nothing
 * about the design), "bounded" no violation but the search was cut short (neither pass nor fail: the
 * exit status 3, not 1).
 */
export interface CellOutcome {
  id: string;
  status: "pass" | "fail" | "skip" | "bounded";
  /** One line: "safe", "violation (guest-integrity)", "safe unless setXsaveApxAbsent=init-zeros", "safe≤4". */
  summary: string;
  /** Why a skipped or bounded cell is so. */
  reason?: string;
}

export function cellOutcome(cell: CellResult): CellOutcome {
  const id = cellId(cell);
  if (cell.verdict === "n/a") return { id, status: "skip", summary: "n/a", reason: `not applicable: ${cell.reason ?? "no such cell"}` };
  if (cell.verdict === "violation") {
    return { id, status: "fail", summary: `violation (${cell.invariant ?? "?"})${cell.condition ? `, ${cell.condition}` : ""}` };
  }
  if (cell.verdict === "not-exercised") {
    return { id, status: "skip", summary: "not exercised", reason: "not exercised: the design's actions never run in this cell" };
  }
  const safe = cell.condition ?? "safe";
  if (cell.complete) return { id, status: "pass", summary: safe };
  const by = cell.stoppedBy ? ` (${cell.stoppedBy === "depth" ? "--depth" : `--${cell.stoppedBy}`})` : "";
  return {
    id,
    status: "bounded",
    summary: `${safe}≤${cell.depthReached}`,
    reason: `bounded search${by}: no violation in event sequences of at most ${cell.depthReached} events, not every reachable state explored`,
  };
}

/** Where a cell is, in words: "fpstate on vmx, host apx / guest apx". */
export const cellWhere = (cell: CellResult): string => `${cell.design} on ${cell.backend}, ${profileLabel(cell)}`;

/** A counterexample as lines: the events (numbered from 1), the failing one marked with its site. */
export function counterexampleLines(ce: CounterexampleReport): string[] {
  return ce.events.map((e, i) => `${i + 1}. ${eventLabel(e)}${i === ce.failingStep ? `   <- breaks ${ce.invariant}${ce.site ? ` at ${ce.site}` : ""}` : ""}`);
}
