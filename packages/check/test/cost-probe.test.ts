import { describe, expect, it } from "vitest";
import { zeroCost } from "@kvmx/core";
import { measureCost } from "../src/cost/cost-probe.js";
import { DEFAULT_WEIGHTS, parseWeights, weighCost } from "../src/cost/weights.js";
import type { CheckSubject } from "../src/matrix/provider.js";
import { toyModel, toyStart, type ToyEvent, type ToyState } from "./toy-model.js";

const subject = (probes: CheckSubject<ToyState, ToyEvent>["costProbes"], bugX?: number): CheckSubject<ToyState, ToyEvent> => ({
  model: toyModel(bugX === undefined ? {} : { bugX }),
  start: toyStart(),
  scenario: () => "",
  costProbes: probes,
});

describe("measureCost", () => {
  it("sums the model's counters over the trip, minus the baseline trip", () => {
    const c = measureCost(
      subject(() => [
        { kind: "fastpath", setup: [{ op: "inc-y" }], trip: [{ op: "inc-x" }, { op: "arm" }], baseline: [{ op: "inc-x" }] },
        { kind: "full-exit", setup: [], trip: [{ op: "inc-y" }, { op: "fire" }] },
      ]),
    );
    expect(c.perTrip.fastpath).toEqual({ ...zeroCost(), xsetbv: 1 });
    expect(c.perTrip["full-exit"]).toEqual({ ...zeroCost(), egprLoads: 16, egprStores: 16 });
    expect(c.cycles?.fastpath).toBe(DEFAULT_WEIGHTS.xsetbv.cycles);
    expect(c.note).toBeUndefined();
  });

  it("still prices a trip that breaks an invariant, and says so", () => {
    const c = measureCost(subject(() => [{ kind: "full-exit", setup: [{ op: "inc-x" }, { op: "inc-x" }], trip: [{ op: "fire" }] }], 2));
    expect(c.perTrip["full-exit"]).toEqual({ ...zeroCost(), egprStores: 16 });
    expect(c.note).toBe("full-exit trip breaks guest-integrity");
  });
});

describe("weights", () => {
  it("weighs counters by the table", () => {
    expect(weighCost({ ...zeroCost(), xsetbv: 2, egprLoads: 16 })).toBe(2 * DEFAULT_WEIGHTS.xsetbv.cycles + 16 * DEFAULT_WEIGHTS.egprLoads.cycles);
  });
  it("every default weight states its source", () => {
    for (const w of Object.values(DEFAULT_WEIGHTS)) expect(w.source.length).toBeGreaterThan(10);
  });
  it("parses overrides and rejects unknown counters or bad values with the file name", () => {
    const w = parseWeights({ weights: { xsetbv: 100, branches: { cycles: 2, source: "measured on my box" } } }, "w.yaml");
    expect(w.xsetbv).toEqual({ cycles: 100, source: "override from w.yaml" });
    expect(w.branches.source).toBe("measured on my box");
    expect(w.egprLoads).toEqual(DEFAULT_WEIGHTS.egprLoads);
    expect(() => parseWeights({ xsetbvv: 1 }, "w.yaml")).toThrow(/w.yaml: weights: unknown counter "xsetbvv"/);
    expect(() => parseWeights({ xsetbv: -1 }, "w.yaml")).toThrow(/non-negative/);
    expect(() => parseWeights([1], "w.yaml")).toThrow(/expected an object/);
  });
});
