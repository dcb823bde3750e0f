import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { hashKey } from "../src/engine/state-hash.js";
import { VisitedTable } from "../src/engine/visited-table.js";

describe("VisitedTable", () => {
  it("law: behaves as a set of keys, across growth", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 12 }), { maxLength: 400 }), (keys) => {
        const t = new VisitedTable(4);
        const ref = new Set<string>();
        for (const k of keys) {
          const id = t.insert(hashKey(k), -1, 0);
          expect(id >= 0).toBe(!ref.has(k));
          ref.add(k);
        }
        expect(t.size).toBe(ref.size);
        for (const k of ref) expect(t.has(hashKey(k))).toBe(true);
      }),
    );
  });

  it("rebuilds paths from parent pointers", () => {
    const t = new VisitedTable(2);
    const root = t.insert(hashKey("root"), -1, 0);
    const a = t.insert(hashKey("a"), root, 3);
    const b = t.insert(hashKey("b"), a, 1);
    const c = t.insert(hashKey("c"), b, 4);
    expect(t.pathTo(c)).toEqual([3, 1, 4]);
    expect(t.pathTo(root)).toEqual([]);
  });

  it("stores a hundred thousand states in a few MiB", () => {
    const t = new VisitedTable();
    for (let i = 0; i < 100_000; i++) t.insert(hashKey(`state-${i}`), i - 1, i & 7);
    expect(t.size).toBe(100_000);
    expect(t.bytes).toBeLessThan(8 * 1024 * 1024);
  });

  it("hashKey spreads near-identical keys (no collisions among 200k)", () => {
    const seen = new Set<string>();
    const h = { hi: 0, lo: 0 };
    for (let i = 0; i < 200_000; i++) {
      hashKey(`x${i}|0|0`, h);
      seen.add(`${h.hi}:${h.lo}`);
    }
    expect(seen.size).toBe(200_000);
  });
});
