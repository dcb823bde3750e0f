import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { explore } from "../src/engine/explore.js";
import { toyModel, toyStart, type ToyEvent } from "./toy-model.js";

const ops = (events: ToyEvent[]) => events.map((e) => e.op);

describe("explore (breadth-first over the toy model)", () => {
  it("finds the planted depth-3 bug with a shortest counterexample", () => {
    const r = explore(toyModel({ bugX: 2 }), toyStart(), { depth: 6 });
    expect(r.verdict).toBe("violation");
    expect(r.counterexamples).toHaveLength(1);
    expect(ops(r.counterexamples[0]!.events)).toEqual(["inc-x", "inc-x", "fire"]);
    expect(r.counterexamples[0]!.invariant).toBe("guest-integrity");
  });

  it("reports safe when the bug is deeper than the depth bound", () => {
    const r = explore(toyModel({ bugX: 2 }), toyStart(), { depth: 2 });
    expect(r.verdict).toBe("safe");
    expect(r.depthExplored).toBe(2);
  });

  it("deduplicates states: every distinct state is expanded once", () => {
    const calls = { n: 0 };
    const r = explore(toyModel({ calls }), toyStart(), { depth: 30 });
    expect(r.verdict).toBe("safe");
    // 4 × 3 × 2 reachable states, each expanded once with its 5 events.
    expect(r.states).toBe(24);
    expect(r.transitions).toBe(24 * 5);
    expect(calls.n).toBe(24 * 5);
    // Without deduplication depth 30 would mean 5^30 sequences; the search stopped once no new state appeared.
    expect(r.depthExplored).toBeLessThan(30);
  });

  it("keeps the shortest counterexample of every invariant with collect per-invariant", () => {
    const r = explore(toyModel({ bugX: 3, bugY: 1, leakY: 2 }), toyStart(), { depth: 8, collect: "per-invariant" });
    expect(r.counterexamples.map((c) => [c.invariant, c.events.length])).toEqual([
      ["no-leak", 3],
      ["guest-integrity", 5],
    ]);
  });

  it("stops at maxStates and says so", () => {
    const r = explore(toyModel({ modX: 100, modY: 100 }), toyStart(), { depth: 50, maxStates: 500 });
    expect(r.truncated).toBe(true);
    expect(r.states).toBe(500);
  });

  it("law: the counterexample length is the true shortest distance (brute force without dedupe)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 }), (bugX, bugY) => {
        const model = toyModel({ bugX, bugY });
        const depth = 6;
        const r = explore(model, toyStart(), { depth });
        // Brute force: shortest length at which some sequence violates.
        let shortest: number | undefined;
        let layer = [toyStart()];
        for (let d = 1; d <= depth && shortest === undefined; d++) {
          const next = [];
          for (const s of layer) {
            for (const e of model.events(s)) {
              const res = model.apply(s, e);
              if (res.violations.length > 0) shortest = d;
              else next.push(res.state);
            }
          }
          layer = next;
        }
        if (shortest === undefined) expect(r.verdict).toBe("safe");
        else expect(r.counterexamples[0]?.events.length).toBe(shortest);
        // And the counterexample really breaks: replaying it hits the violation on its last event.
        const ce = r.counterexamples[0];
        if (ce) {
          let s = toyStart();
          ce.events.forEach((e, i) => {
            const res = model.apply(s, e);
            expect(res.violations.length > 0).toBe(i === ce.events.length - 1);
            s = res.state;
          });
        }
      }),
      { numRuns: 30 },
    );
  });
});

describe("explore and a model that throws", () => {
  it("reports the event sequence that made the model throw, keeping the cause", () => {
    const base = toyModel();
    const model = {
      ...base,
      apply: (s: Parameters<typeof base.apply>[0], e: ToyEvent) => {
        if (e.op === "fire" && s.x === 1) throw new RangeError("boom");
        return base.apply(s, e);
      },
    };
    let caught: unknown;
    try {
      explore(model, toyStart(), { depth: 4 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(Error);
    expect((caught as Error).message).toContain('[{"op":"inc-x"}, {"op":"fire"}]: RangeError: boom');
    expect((caught as Error & { category: string }).category).toBe("internal");
    expect((caught as Error).cause).toBeInstanceOf(RangeError);
  });
});
