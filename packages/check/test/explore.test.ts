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

  it("reports safe when the bug is deeper than the depth bound, and says the search was bounded", () => {
    const r = explore(toyModel({ bugX: 2 }), toyStart(), { depth: 2 });
    expect(r.verdict).toBe("safe");
    expect(r.depthReached).toBe(2);
    expect(r.complete).toBe(false);
    expect(r.stoppedBy).toBe("depth");
    // The 5 states two events away were found but not expanded; no diameter without the fixpoint.
    expect(r.frontier).toBe(5);
    expect(r.statesPerDepth).toEqual([1, 3, 5]);
    expect(r.diameter).toBeUndefined();
  });

  it("without a depth explores to the fixpoint: complete, with the diameter and states per level", () => {
    const calls = { n: 0 };
    const r = explore(toyModel({ calls }), toyStart());
    expect(r.verdict).toBe("safe");
    expect(r.complete).toBe(true);
    expect(r.stoppedBy).toBeUndefined();
    expect(r.frontier).toBe(0);
    // 4 × 3 × 2 states; the farthest, x=3 y=2 armed, is 3 + 2 + 1 events away.
    expect(r.states).toBe(24);
    expect(r.statesPerDepth).toEqual([1, 3, 5, 6, 5, 3, 1]);
    expect(r.diameter).toBe(6);
    // The last level was expanded too (its 5 events found nothing new): sequences of 7 events were tried.
    expect(r.depthReached).toBe(7);
    expect(r.transitions).toBe(24 * 5);
    expect(calls.n).toBe(24 * 5);
  });

  it("a depth bound one past the diameter still reaches the fixpoint; at the diameter it does not", () => {
    const past = explore(toyModel(), toyStart(), { depth: 7 });
    expect([past.complete, past.diameter, past.stoppedBy]).toEqual([true, 6, undefined]);
    const at = explore(toyModel(), toyStart(), { depth: 6 });
    expect([at.complete, at.diameter, at.stoppedBy, at.frontier, at.depthReached]).toEqual([false, undefined, "depth", 1, 6]);
    expect(at.states).toBe(24);
  });

  it("a violation is definite: \"first\" stops without the fixpoint, \"per-invariant\" goes on to it", () => {
    const first = explore(toyModel({ bugX: 2 }), toyStart());
    expect([first.verdict, first.complete, first.stoppedBy]).toEqual(["violation", false, undefined]);
    const all = explore(toyModel({ bugX: 2 }), toyStart(), { collect: "per-invariant" });
    expect([all.verdict, all.complete, all.diameter]).toEqual(["violation", true, 6]);
    expect(all.counterexamples.map((c) => c.events.length)).toEqual([3]);
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
    expect(r.complete).toBe(true);
    expect(r.depthReached).toBeLessThan(30);
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
    expect(r.complete).toBe(false);
    expect(r.stoppedBy).toBe("max-states");
    expect(r.states).toBe(500);
    expect(r.frontier).toBeGreaterThan(0);
    expect(r.diameter).toBeUndefined();
    expect(r.depthReached).toBeLessThan(50);
  });

  it("stops at maxSeconds and says so", () => {
    // 100 × 100 × 2 states cannot all be expanded before a deadline of 0 s (checked every 64 states).
    const r = explore(toyModel({ modX: 100, modY: 100 }), toyStart(), { maxSeconds: 0 });
    expect(r.verdict).toBe("safe");
    expect(r.complete).toBe(false);
    expect(r.stoppedBy).toBe("max-seconds");
    expect(r.states).toBeLessThan(100 * 100 * 2);
    expect(r.frontier).toBeGreaterThan(0);
    expect(r.diameter).toBeUndefined();
  });

  it("reports progress, ending with the final counts", () => {
    const seen: { states: number; frontier: number }[] = [];
    const r = explore(toyModel({ modX: 20, modY: 20 }), toyStart(), { onProgress: (p) => seen.push({ states: p.states, frontier: p.frontier }) });
    expect(r.complete).toBe(true);
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.at(-1)).toEqual({ states: 20 * 20 * 2, frontier: 0 });
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.states).toBeGreaterThanOrEqual(seen[i - 1]!.states);
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
