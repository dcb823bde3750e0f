import { zeroCost, type CostCounters } from "@kvmx/core";
import type { CellCost } from "../report/check-report.js";
import type { CheckSubject, CostKind } from "../matrix/provider.js";
import { addCost, COST_COLUMNS } from "./cost-counters.js";
import { DEFAULT_WEIGHTS, weighCost, type CostWeights } from "./weights.js";

/**
 * Prices a cell: for each probe, replays the setup, then sums the machine's CostCounters over the
 * round-trip events (minus the baseline trip). An unsafe design is still priced — what it would cost
 * is part of the answer — but a probe that breaks an invariant says so in `note`.
 */
export function measureCost<S, E>(subject: CheckSubject<S, E>, weights: CostWeights = DEFAULT_WEIGHTS): CellCost {
  const perTrip: Partial<Record<CostKind, CostCounters>> = {};
  const cycles: Partial<Record<CostKind, number>> = {};
  const notes: string[] = [];
  const apply = (s: S, events: readonly E[], what: string): { state: S; cost: CostCounters } => {
    const total = zeroCost();
    for (const e of events) {
      const r = subject.model.apply(s, e);
      addCost(total, r.cost);
      const broken = [...new Set(r.violations.map((v) => v.invariant))];
      if (broken.length > 0) notes.push(`${what} breaks ${broken.join(", ")}`);
      s = r.state;
    }
    return { state: s, cost: total };
  };
  for (const probe of subject.costProbes()) {
    const warm = apply(subject.start, probe.setup, `${probe.kind} setup`).state;
    const total = apply(warm, probe.trip, `${probe.kind} trip`).cost;
    const base = probe.baseline ? apply(warm, probe.baseline, `${probe.kind} baseline`).cost : zeroCost();
    for (const { key } of COST_COLUMNS) total[key] = Math.max(0, total[key] - base[key]);
    perTrip[probe.kind] = total;
    cycles[probe.kind] = weighCost(total, weights);
  }
  const note = [...new Set(notes)].join("; ");
  return note ? { perTrip, cycles, note } : { perTrip, cycles };
}
