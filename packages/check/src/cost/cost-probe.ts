import { zeroCost, type CostCounters } from "@kvmx/core";
import type { CellCost } from "../report/check-report.js";
import type { CheckSubject, CostKind } from "../matrix/provider.js";
import { addCost } from "./cost-counters.js";
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
    const total = zeroCost();
    if (!broken) {
      for (const e of probe.trip) {
        const r = subject.model.apply(state, e);
        addCost(total, r.cost);
        if (r.violations.length > 0) {
          broken = `${probe.kind}: the round trip breaks ${r.violations[0]?.invariant}`;
          break;
        }
        state = r.state;
      }
    }
    if (broken) {
      notes.push(broken);
      continue;
    }
    perTrip[probe.kind] = total;
    cycles[probe.kind] = weighCost(total, weights);
  }
  return notes.length > 0 ? { perTrip, cycles, note: notes.join("; ") } : { perTrip, cycles };
}
