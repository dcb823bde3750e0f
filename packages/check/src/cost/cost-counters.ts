import { zeroCost, type CostCounters } from "@kvmx/core";

/** The counters in table order, with the column titles of the cost table. */
export const COST_COLUMNS: readonly { key: keyof CostCounters; title: string }[] = [
  { key: "xsetbv", title: "XSETBV" },
  { key: "egprLoads", title: "EGPR ld" },
  { key: "egprStores", title: "EGPR st" },
  { key: "egprClears", title: "EGPR clr" },
  { key: "push2pop2", title: "PUSH2/POP2" },
  { key: "branches", title: "branches" },
  { key: "xsaveBytes", title: "XSAVE B" },
  { key: "xrstorBytes", title: "XRSTOR B" },
];

export function addCost(into: CostCounters, c: CostCounters): CostCounters {
  for (const { key } of COST_COLUMNS) into[key] += c[key];
  return into;
}

export const sumCosts = (cs: readonly CostCounters[]): CostCounters => cs.reduce(addCost, zeroCost());
