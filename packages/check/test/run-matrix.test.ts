import { describe, expect, it } from "vitest";
import { enumerateCells, cellId } from "../src/matrix/cell.js";
import { runMatrix } from "../src/matrix/run-matrix.js";
import { parseShard, selectShard } from "../src/matrix/shard.js";
import { mergeReports } from "../src/report/merge.js";
import { readReport } from "../src/report/read-report.js";
import { reportFailed, reportIncomplete, type CheckReport } from "../src/report/check-report.js";
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

  it("says per cell whether the search was complete: bounded by --depth, or run to the fixpoint", async () => {
    const bounded = await runMatrix(toyProvider(), { depth: 5, designs: ["toy-safe"], backends: ["toyA"] });
    expect(bounded.depth).toBe(5);
    expect(bounded.complete).toBe(false);
    expect(reportIncomplete(bounded)).toBe(true);
    expect(reportFailed(bounded)).toBe(false);
    const safe = bounded.cells.find((c) => c.verdict === "safe")!;
    // (x=3, y=2, armed) is 6 events away: found nowhere, so one state short and the frontier holds 3.
    expect([safe.complete, safe.stoppedBy, safe.depthReached, safe.frontier, safe.diameter]).toEqual([false, "depth", 5, 3, undefined]);
    expect(safe.statesPerDepth).toEqual([1, 3, 5, 6, 5, 3]);
    // n/a cells were not explored and do not make a report incomplete.
    expect(bounded.cells.filter((c) => c.verdict === "n/a").every((c) => c.complete && c.states === 0)).toBe(true);

    const full = await runMatrix(toyProvider(), { designs: ["toy-safe", "toy-bug3"], backends: ["toyA"] });
    expect(full.depth).toBeUndefined();
    expect(full.complete).toBe(true);
    expect(reportIncomplete(full)).toBe(false);
    expect(reportFailed(full)).toBe(true);
    for (const c of full.cells.filter((x) => x.design === "toy-safe" && x.verdict === "safe")) {
      expect([c.complete, c.stoppedBy, c.states, c.diameter, c.depthReached, c.frontier]).toEqual([true, undefined, 24, 6, 7, 0]);
    }
    // A violation is definite although the search stopped at it ("first").
    const bug = full.cells.find((c) => c.design === "toy-bug3" && c.verdict === "violation")!;
    expect(bug.counterexample!.events).toHaveLength(3);
    expect(bug.complete).toBe(false);
  });

  it("--max-states bounds each cell (stoppedBy max-states)", async () => {
    const r = await runMatrix(toyProvider(), { maxStates: 10, designs: ["toy-safe"], backends: ["toyA"] });
    expect(r.complete).toBe(false);
    for (const c of r.cells.filter((x) => x.verdict === "safe")) {
      expect([c.complete, c.stoppedBy, c.states]).toEqual([false, "max-states", 10]);
      expect(c.frontier).toBeGreaterThan(0);
    }
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
    const fixpoint = await runMatrix(toyProvider(), { designs: ["toy-bug3"] });
    expect(() => mergeReports([{ report: a, file: "a.json" }, { report: fixpoint, file: "f.json" }])).toThrow(/f.json: the fixpoint differs from a.json's depth 4/);
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
    // Version 1 results (depth-bounded only, no `complete`) are not read as version 2; nor is a future one.
    expect(() => readReport('{"schemaVersion":1,"depth":3,"cells":[]}', "y.json")).toThrow(/y.json: .*schemaVersion must be 2, got 1/);
    expect(() => readReport('{"schemaVersion":3,"complete":true,"cells":[]}', "y.json")).toThrow(/y.json: .*schemaVersion/);
    expect(() => readReport('{"schemaVersion":2,"cells":[]}', "w.json")).toThrow(/w.json: .*complete missing/);
    expect(() => readReport('{"schemaVersion":2,"depth":"3","complete":false,"cells":[]}', "w.json")).toThrow(/w.json: .*depth must be a number/);
    expect(() => readReport('{"schemaVersion":2,"depth":3,"complete":false,"cells":[{"design":"d"}]}', "z.json")).toThrow(/cells\[0\]/);
    const cell = { design: "d", backend: "b", host: { cpuApx: true, kernelApx: false }, guest: { apx: true }, verdict: "safe" };
    expect(() => readReport(JSON.stringify({ schemaVersion: 2, complete: true, cells: [cell] }), "c.json")).toThrow(/c.json: .*cells\[0\]\.complete/);
    // Without a depth (explored to the fixpoint) a result is well formed.
    expect(readReport(JSON.stringify({ schemaVersion: 2, complete: true, cells: [{ ...cell, complete: true }] }), "ok.json").depth).toBeUndefined();
  });
  it("revives trace XCR0s as bigints", async () => {
    const r = await runMatrix(toyProvider(), { depth: 4, designs: ["toy-bug3"], backends: ["toyA"] });
    const back = readReport(json(r), "r.json");
    const step = back.cells.find((c) => c.counterexample)!.counterexample!.trace[0]!.steps[0]!;
    expect(typeof step.xcr0).toBe("bigint");
  });
});

describe("what the provider keeps per cell", () => {
  it("is released once each explored cell is done", async () => {
    const released: string[] = [];
    const provider = { ...toyProvider(), release: (c: Parameters<NonNullable<ReturnType<typeof toyProvider>["release"]>>[0]) => void released.push(cellId(c)) };
    const report = await runMatrix(provider, { depth: 3, cost: false });
    const explored = report.cells.filter((c) => c.verdict !== "n/a").map((c) => cellId(c));
    expect(released).toEqual(explored);
  });
});
