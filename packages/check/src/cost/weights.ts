import { InputError, type CostCounters } from "@kvmx/core";
import { COST_COLUMNS } from "./cost-counters.js";

/**
 * Cycle weights per counted action, to turn a round trip's counters into one estimated number.
 * These are order-of-magnitude ESTIMATES for a current Intel core, not measurements of APX hardware
 * (none exists here); each entry says where the number comes from. Override with `--weights FILE`
 * (JSON or YAML `{ weights: { xsetbv: 60, ... } }`).
 */
export interface WeightEntry {
  cycles: number;
  source: string;
}
export type CostWeights = Record<keyof CostCounters, WeightEntry>;

export const DEFAULT_WEIGHTS: CostWeights = {
  xsetbv: {
    cycles: 60,
    source: "estimate: XSETBV is a serialising-class XCR write; KVM avoids it when XCR0 is unchanged for this reason (kvm_load_xfeatures)",
  },
  egprLoads: { cycles: 1, source: "estimate: one MOV r64, m64 from an L1-hot vCPU struct, ~1 cycle throughput" },
  egprStores: { cycles: 1, source: "estimate: one MOV m64, r64 into an L1-hot vCPU struct" },
  egprClears: { cycles: 0.25, source: "estimate: XOR r32,r32 zero idiom, eliminated at rename (4 per cycle)" },
  push2pop2: {
    cycles: 1,
    source: "estimate: one PUSH2 or POP2 moves two registers; docs/facts.md#position-asm-unconditional (~8 extra instructions per side; Chang measured <1%)",
  },
  branches: { cycles: 1, source: "estimate: one well-predicted conditional branch on the hot path" },
  xsaveBytes: { cycles: 0.05, source: "estimate: XSAVE of an in-use component, ~20 bytes per cycle" },
  xrstorBytes: { cycles: 0.05, source: "estimate: XRSTOR, ~20 bytes per cycle" },
};

export function weighCost(c: CostCounters, w: CostWeights = DEFAULT_WEIGHTS): number {
  let total = 0;
  for (const { key } of COST_COLUMNS) total += c[key] * w[key].cycles;
  return Math.round(total * 100) / 100;
}

/**
 * Reads a weights override: an object `{ weights: { <counter>: number | { cycles, source } } }` (or the
 * inner object directly). Unknown counters and non-numbers are rejected with the file name.
 */
export function parseWeights(data: unknown, file: string): CostWeights {
  const root = isObject(data) && "weights" in data ? data.weights : data;
  if (!isObject(root)) throw new InputError("weights: expected an object mapping counters to cycles", { file });
  const out: CostWeights = structuredClone(DEFAULT_WEIGHTS);
  const known = new Set<string>(COST_COLUMNS.map((c) => c.key));
  for (const [k, v] of Object.entries(root)) {
    if (!known.has(k)) throw new InputError(`weights: unknown counter "${k}" (known: ${[...known].join(", ")})`, { file });
    const key = k as keyof CostCounters;
    if (typeof v === "number" && Number.isFinite(v) && v >= 0) out[key] = { cycles: v, source: `override from ${file}` };
    else if (isObject(v) && typeof v.cycles === "number" && Number.isFinite(v.cycles) && v.cycles >= 0) {
      out[key] = { cycles: v.cycles, source: typeof v.source === "string" ? v.source : `override from ${file}` };
    } else throw new InputError(`weights: "${k}" must be a non-negative number or { cycles, source }`, { file });
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
