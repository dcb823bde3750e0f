import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { minimiseEvents } from "../src/engine/minimise.js";
import { replay } from "../src/engine/replay.js";
import { toyModel, toyStart, type ToyEvent } from "./toy-model.js";

const E = (op: ToyEvent["op"]): ToyEvent => ({ op }) as ToyEvent;

describe("minimiseEvents (delta debugging)", () => {
  it("drops the noise around a planted bug", () => {
    const model = toyModel({ bugX: 2 });
    const noisy = [E("noop"), E("inc-x"), E("arm"), E("noop"), E("noop"), E("inc-x"), E("arm"), E("noop"), E("fire"), E("noop")];
    const min = minimiseEvents(model, toyStart(), noisy, "guest-integrity");
    expect(min.map((e) => e.op)).toEqual(["inc-x", "inc-x", "fire"]);
  });

  it("returns the input when it does not break the invariant", () => {
    const model = toyModel({ bugX: 2 });
    const safe = [E("inc-x"), E("fire")];
    expect(minimiseEvents(model, toyStart(), safe, "guest-integrity")).toEqual(safe);
  });

  it("law: the result still breaks the same invariant and is 1-minimal", () => {
    const op = fc.constantFrom<ToyEvent["op"]>("inc-x", "inc-y", "arm", "fire", "noop");
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), fc.integer({ min: 0, max: 3 }), (list, bugX) => {
        const model = toyModel({ bugX, bugY: 1 });
        const events = [...list.map(E), E("fire")];
        const before = replay(model, toyStart(), events, { invariant: "guest-integrity" });
        fc.pre(before.firstViolation !== undefined);
        const min = minimiseEvents(model, toyStart(), events, "guest-integrity");
        const after = replay(model, toyStart(), min, { invariant: "guest-integrity" });
        expect(after.firstViolation?.eventIndex).toBe(min.length - 1);
        expect(min.length).toBeLessThanOrEqual(events.length);
        for (let i = 0; i < min.length; i++) {
          const without = [...min.slice(0, i), ...min.slice(i + 1)];
          expect(replay(model, toyStart(), without, { invariant: "guest-integrity" }).firstViolation).toBeUndefined();
        }
      }),
      { numRuns: 60 },
    );
  });
});
