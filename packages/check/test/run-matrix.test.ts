import { describe, expect, it } from "vitest";
import { enumerateCells, cellId } from "../src/matrix/cell.js";
import { runMatrix } from "../src/matrix/run-matrix.js";
import { parseShard, selectShard } from "../src/matrix/shard.js";
import { mergeReports } from "../src/report/merge.js";
import { readReport } from "../src/report/read-report.js";
import type { CheckReport } from "../src/report/check-report.js";
import { toyProvider } from "./toy-provider.js";

const json = (r: CheckReport) => JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v));
/** A report without its timings, for equality. */
const timeless = (r: CheckReport) => r.cells.map(({ elapsedMs: _e, ...c }) => c);

describe("runMatrix over the toy provider", () => {
  it("checks every cell: n/a from the provider, violations with scenario and trace, safe otherwise", async () => {
    const r = await runMatrix(toyProvider(), { depth: 5 });
    expect(r.cells).toHaveLength(3 * 2 * 6);
    const byId = new Map(r.cells.map((c) => [cellId(c), c]));
    const na = byId.get("toy-safe.toyB.host-apx.guest-apx")!;
    expect(na.verdict).toBe("n/a");
    expect(na.reason).toMatch(/toyB removes APX/);
    expect(byId.get("toy-safe.toyA.host-noapx.guest-apx")!.reason).toMatch(/no APX/);
    const bug = byId.get("toy-bug3.toyA.host-apx.guest-noapx")!;
    expect(bug.verdict).toBe("violation");
    expect(bug.invariant).toBe("guest-integrity");
    expect(bug.counterexample!.events).toEqual([{ op: "inc-x" }, { op: "inc-x" }, { op: "fire" }]);
    expect(bug.counterexample!.failingStep).toBe(2);
    expect(bug.counterexample!.scenario).toContain("expect: guest-integrity");
    expect(bug.counterexample!.trace.map((t) => t.steps[0]!.site)).toEqual(["toy:inc-x", "toy:inc-x", "toy:fire"]);
    // The leak exists only from a -mapxf host start.
    expect(byId.get("toy-leak.toyA.host-apx.guest-noapx")!.verdict).toBe("safe");
    expect(byId.get("toy-leak.toyA.host-apx-mapxf.guest-noapx")!.invariant).toBe("no-leak");
    // All 24 toy states but (x=3, y=2, armed), which needs 6 events.
    expect(byId.get("toy-safe.toyA.host-apx.guest-noapx")!.states).toBe(23);
  });

  it("prices cells from the model's counters", async () => {
    const r = await runMatrix(toyProvider(), { depth: 1, designs: ["toy-safe"], backends: ["toyA"] });
    const cell = r.cells.find((c) => c.verdict === "safe")!;
    expect(cell.cost?.perTrip.fastpath).toBeDefined();
    expect(cell.cost?.perTrip["full-exit"]).toBeDefined();
  });

  it("restricts to the requested designs and backends and rejects unknown ones", async () => {
    const r = await runMatrix(toyProvider(), { depth: 2, designs: ["toy-bug3"], backends: ["toyB"] });
    expect(new Set(r.cells.map((c) => `${c.design}/${c.backend}`))).toEqual(new Set(["toy-bug3/toyB"]));
    await expect(runMatrix(toyProvider(), { depth: 2, designs: ["nope"] })).rejects.toThrow(/unknown design "nope"/);
  });

  it("shard 1/3 + 2/3 + 3/3 merged equals the unsharded run (through JSON files)", async () => {
    const whole = await runMatrix(toyProvider(), { depth: 4 });
    const parts = [];
    for (let i = 1; i <= 3; i++) {
      const shard = await runMatrix(toyProvider(), { depth: 4, shard: { index: i, count: 3 } });
      expect(shard.shard).toEqual({ index: i, count: 3 });
      parts.push({ report: readReport(json(shard), `shard${i}.json`), file: `shard${i}.json` });
    }
    const merged = mergeReports(parts.reverse());
    expect(json({ ...merged, elapsedMs: 0, statesPerSecond: 0, cells: timeless(merged) as never })).toEqual(
      json({ ...whole, elapsedMs: 0, statesPerSecond: 0, cells: timeless(whole) as never }),
    );
  });

  it("merge refuses results of different depths and conflicting verdicts", async () => {
    const a = await runMatrix(toyProvider(), { depth: 4, designs: ["toy-bug3"] });
    const b = await runMatrix(toyProvider(), { depth: 2, designs: ["toy-bug3"] });
    expect(() => mergeReports([{ report: a, file: "a.json" }, { report: b, file: "b.json" }])).toThrow(/b.json: depth 2/);
    const flipped = structuredClone(a);
    flipped.cells[0]!.verdict = "safe";
    expect(() => mergeReports([{ report: a, file: "a.json" }, { report: flipped, file: "c.json" }])).toThrow(/c.json: cell/);
  });
});

describe("shards", () => {
  it("parses I/N and rejects nonsense", () => {
    expect(parseShard("2/5")).toEqual({ index: 2, count: 5 });
    for (const bad of ["0/2", "3/2", "x", "1/0", "1-2"]) expect(() => parseShard(bad)).toThrow(/--shard/);
  });
  it("splits the canonical order into disjoint slices that cover it", () => {
    const cells = enumerateCells(["a", "b", "c"], ["x", "y"]);
    const slices = [1, 2, 3, 4].map((i) => selectShard(cells, { index: i, count: 4 }));
    expect(slices.flat().map(cellId).sort()).toEqual(cells.map(cellId).sort());
    expect(new Set(slices.flat().map(cellId)).size).toBe(cells.length);
  });
});

describe("readReport", () => {
  it("rejects files that are not check results, naming the file", () => {
    expect(() => readReport("{", "x.json")).toThrow(/x.json: not JSON/);
    expect(() => readReport('{"schemaVersion":2}', "y.json")).toThrow(/y.json: .*schemaVersion/);
    expect(() => readReport('{"schemaVersion":1,"depth":3,"cells":[{"design":"d"}]}', "z.json")).toThrow(/cells\[0\]/);
  });
  it("revives trace XCR0s as bigints", async () => {
    const r = await runMatrix(toyProvider(), { depth: 4, designs: ["toy-bug3"], backends: ["toyA"] });
    const back = readReport(json(r), "r.json");
    const step = back.cells.find((c) => c.counterexample)!.counterexample!.trace[0]!.steps[0]!;
    expect(typeof step.xcr0).toBe("bigint");
  });
});
