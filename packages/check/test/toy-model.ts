import { zeroCost, type ApplyResult, type CostCounters, type Explorable, type TraceStep } from "@kvmx/core";

/**
 * A small Explorable for the engine's tests: two counters and an "armed" flag. `fire` breaks
 * guest-integrity when x equals `bugX` and y equals `bugY` (so the shortest counterexample has
 * bugX + bugY + 1 events); `arm` breaks no-leak when `leakY` is set and y equals it, while x is 0.
 */
export interface ToyState {
  x: number;
  y: number;
  armed: boolean;
}
export type ToyEvent = { op: "inc-x" } | { op: "inc-y" } | { op: "arm" } | { op: "fire" } | { op: "noop" };

export interface ToyOptions {
  bugX?: number;
  bugY?: number;
  leakY?: number;
  /** Counter wrap-around; the state space is modX × modY × 2. */
  modX?: number;
  modY?: number;
  /** Counts apply() calls, so tests can see deduplication working. */
  calls?: { n: number };
}

const ALPHABET: ToyEvent[] = [{ op: "inc-x" }, { op: "inc-y" }, { op: "arm" }, { op: "fire" }, { op: "noop" }];

export function toyModel(o: ToyOptions = {}): Explorable<ToyState, ToyEvent> {
  const modX = o.modX ?? 4;
  const modY = o.modY ?? 3;
  return {
    events: () => ALPHABET,
    key: (s) => `${s.x}/${s.y}/${s.armed ? 1 : 0}`,
    apply(s, e, trace?: TraceStep[]): ApplyResult<ToyState> {
      if (o.calls) o.calls.n++;
      const state = { ...s };
      const violations: ApplyResult<ToyState>["violations"] = [];
      switch (e.op) {
        case "inc-x":
          state.x = (s.x + 1) % modX;
          break;
        case "inc-y":
          state.y = (s.y + 1) % modY;
          break;
        case "arm":
          state.armed = true;
          if (o.leakY !== undefined && s.y === o.leakY && s.x === 0) {
            violations.push({ invariant: "no-leak", message: "armed with y at the leak value", step: 0, site: "toy:arm" });
          }
          break;
        case "fire":
          state.armed = false;
          if (o.bugX !== undefined && s.x === o.bugX && s.y === (o.bugY ?? 0)) {
            violations.push({ invariant: "guest-integrity", message: `fired at x=${s.x} y=${s.y}`, step: 0, site: "toy:fire" });
          }
          break;
        case "noop":
          break;
      }
      // Toy prices: each op stands for one kind of counted action.
      const cost: CostCounters = zeroCost();
      if (e.op === "inc-x") cost.branches = 1;
      if (e.op === "inc-y") cost.egprLoads = 16;
      if (e.op === "arm") cost.xsetbv = 1;
      if (e.op === "fire") cost.egprStores = 16;
      trace?.push({ site: `toy:${e.op}`, kind: "c", description: e.op, xcr0: BigInt(state.x), egprTags: new Array(16).fill(state.armed ? 1 : 0), violations });
      return { state, violations, cost };
    },
  };
}

export const toyStart = (): ToyState => ({ x: 0, y: 0, armed: false });
