import { zeroCost, type Explorable, ModelBugError } from "@kvmx/core";
import { describe, expect, it } from "vitest";
import { explore } from "../src/engine/explore.js";
import { Frontier } from "../src/engine/frontier.js";

/** Two counters in [0, 7]; a violation when both are 7. The state is a plain array of words. */
const grid = (packed: boolean): Explorable<number[], "x" | "y" | "both"> => ({
  apply: (s, e) => {
    const n = [e === "y" ? s[0]! : Math.min(s[0]! + 1, 7), e === "x" ? s[1]! : Math.min(s[1]! + 1, 7)];
    const violations = n[0] === 7 && n[1] === 7 ? [{ invariant: "guest-integrity" as const, message: "both 7", step: 0 }] : [];
    return { state: n, violations, cost: zeroCost() };
  },
  events: () => ["x", "y", "both"],
  key: (s) => s.join(","),
  ...(packed ? { pack: (s: number[]) => s, unpack: (w: Int32Array) => Array.from(w) } : {}),
});

describe("the frontier keeps packable states packed", () => {
  it("a packed exploration finds what an unpacked one finds, state for state", () => {
    const plain = explore(grid(false), [0, 0]);
    const packed = explore(grid(true), [0, 0]);
    expect(packed.statesPerDepth).toEqual(plain.statesPerDepth);
    expect(packed.counterexamples.map((c) => c.events)).toEqual(plain.counterexamples.map((c) => c.events));
    expect(packed.counterexamples[0]!.events).toHaveLength(7);
  });

  it("states of different lengths share slabs and come back whole; a word beyond 32 bits is a model bug", () => {
    const f = new Frontier<number[]>({ pack: (s) => s, unpack: (w) => Array.from(w) });
    const states = Array.from({ length: 5000 }, (_, i) => Array.from({ length: 1 + (i % 500) }, (_, j) => i * 7 - j));
    states.forEach((s, i) => f.push(s, i));
    expect(f.length).toBe(5000);
    for (let i = 0; i < 5000; i += 499) {
      expect(f.id(i)).toBe(i);
      expect(f.take(i)).toEqual(states[i]);
    }
    expect(() => f.push([2 ** 31], 0)).toThrow(ModelBugError);
    expect(() => f.push([0.5], 0)).toThrow(ModelBugError);
  });

  it("a recycled level's slabs hold the next level's states, and what was taken before stays whole", () => {
    const model = { pack: (s: number[]) => s, unpack: (w: Int32Array) => Array.from(w) };
    const spare: Int32Array[] = [];
    const first = new Frontier<number[]>(model, spare);
    const old = Array.from({ length: 300 }, (_, i) => Array.from({ length: 64 }, (_, j) => i + j));
    old.forEach((s, i) => first.push(s, i));
    const taken = old.map((_, i) => first.take(i));
    first.recycle();
    expect(first.length).toBe(0);
    expect(spare).toHaveLength(1);
    const slab = spare[0];
    const second = new Frontier<number[]>(model, spare);
    const fresh = Array.from({ length: 300 }, (_, i) => Array.from({ length: 64 }, (_, j) => -1 - i * j));
    fresh.forEach((s, i) => second.push(s, i));
    expect(spare).toHaveLength(0);
    fresh.forEach((s, i) => expect(second.take(i)).toEqual(s));
    expect(taken).toEqual(old);
    second.recycle();
    expect(spare).toEqual([slab]);
  });
});
