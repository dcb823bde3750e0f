import { zeroCost, type CostCounters } from "@kvmx/core";
import type { CellCost } from "../report/check-report.js";
import type { CheckSubject, CostKind } from "../matrix/provider.js";
import { addCost, COST_COLUMNS } from "./cost-counters.js";
import { DEFAULT_WEIGHTS, weighCost, type CostWeights } from "./weights.js";

/**
 * Prices a cell: for each probe, replays the setup, then sums the machine's CostCounters over the
 * round-trip events. A probe that breaks an invariant is not priced (the design is unsafe there) and
 * says so in `note`.
 */
export function measureCost<S, E>(subject: CheckSubject<S, E>, weights: CostWeights = DEFAULT_WEIGHTS): CellCost {
  const perTrip: Partial<Record<CostKind, CostCounters>> = {};
  const cycles: Partial<Record<CostKind, number>> = {};
  const notes: string[] = [];
  for (const probe of subject.costProbes()) {
    let state = subject.start;
    let broken: string | undefined;
    for (const e of probe.setup) {
      const r = subject.model.apply(state, e);
      if (r.violations.length > 0) {
        broken = `${probe.kind}: setup breaks ${r.violations[0]?.invariant}`;
        break;
      }
      state = r.state;
    }
    const run = (events: readonly E[], what: string): CostCounters | undefined => {
      const total = zeroCost();
      let s = state;
      for (const e of events) {
        const r = subject.model.apply(s, e);
        addCost(total, r.cost);
        if (r.violations.length > 0) {
          broken = `${probe.kind}: the ${what} breaks ${r.violations[0]?.invariant}`;
          return undefined;
        }
        s = r.state;
      }
      return total;
    };
    const total = broken ? undefined : run(probe.trip, "round trip");
    const base = total && probe.baseline ? run(probe.baseline, "baseline trip") : zeroCost();
    if (!total || !base) {
      notes.push(broken ?? `${probe.kind}: not priced`);
      continue;
    }
    for (const { key } of COST_COLUMNS) total[key] = Math.max(0, total[key] - base[key]);
    perTrip[probe.kind] = total;
    cycles[probe.kind] = weighCost(total, weights);
  }
  return notes.length > 0 ? { perTrip, cycles, note: notes.join("; ") } : { perTrip, cycles };
}
