import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

const dir = mkdtempSync(join(tmpdir(), "kvmx-check-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Cell = {
  design: string;
  backend: string;
  host: { cpuApx: boolean; kernelApx: boolean };
  guest: { apx: boolean };
  verdict: string;
  invariant?: string;
  reason?: string;
  counterexample?: { events: unknown[]; failingStep: number; scenarioFile?: string; chromeTraceFile?: string; scenario: string };
  states: number;
  transitions: number;
  complete: boolean;
  stoppedBy?: string;
  depthReached: number;
  frontier: number;
  diameter?: number;
  statesPerDepth?: number[];
  cost?: { perTrip: Record<string, Record<string, number>> };
};
type Report = { schemaVersion: number; depth?: number; complete: boolean; cells: Cell[]; elapsedMs: number; statesPerSecond: number };

async function run(args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe("kvmx check", () => {
  it("exits 0 and prints the table when every requested cell is safe (explored to the fixpoint) or n/a", async () => {
    // hw-xcr0-switch on svm: every cell is n/a (SVM has no APX to give) or safe, and small enough to finish.
    const r = await run(["check", "--design", "hw-xcr0-switch", "--backend", "svm", "--workers", "0"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("hw-xcr0-switch");
    expect(r.out).toMatch(/H\+ g\+/);
    expect(r.out).toContain("n.a.");
    expect(r.out).not.toContain("violation (");
    // A bare "safe": every reachable state was checked; no "safe≤N".
    expect(r.out).toMatch(/│ safe +│/);
    expect(r.out).not.toContain("safe≤");
    expect(r.out).toMatch(/\ncomplete \(every reachable state explored\): 6 cells, 0 with a violation\b[^\n]*; [\d,]+ states/);
    expect(r.out).toContain("Cost per round trip");
    // No colour codes when stdout is not a terminal.
    expect(r.out).not.toContain("\u001b[");
  });

  it("exits 0 for one safe cell run to the fixpoint; JSON has no depth and says complete, with the diameter", async () => {
    // fpstate on vmx, shard 1/6 of its six profiles: the first, host and guest without APX (safe).
    const r = await run(["check", "--design", "fpstate", "--backend", "vmx", "--shard", "1/6", "--workers", "0", "--json"]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as Report;
    expect(report.schemaVersion).toBe(2);
    expect(report.depth).toBeUndefined();
    expect(report.complete).toBe(true);
    expect(report.cells).toHaveLength(1);
    const c = report.cells[0]!;
    expect([c.design, c.backend, c.host.cpuApx, c.guest.apx, c.verdict]).toEqual(["fpstate", "vmx", false, false, "safe"]);
    expect(c.complete).toBe(true);
    expect(c.stoppedBy).toBeUndefined();
    expect(c.frontier).toBe(0);
    // The diameter is the last level that added a state; the level after it was expanded and added none.
    expect(c.diameter).toBeGreaterThan(0);
    expect(c.depthReached).toBe(c.diameter! + 1);
    expect(c.statesPerDepth).toHaveLength(c.diameter! + 1);
    expect(c.statesPerDepth![0]).toBe(1);
    // Each level's count covers the states it reached first (a state reached again by other
    // assumption valuations counts again), so together they cover every state.
    expect(c.statesPerDepth!.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(c.states);
  });

  it("exits 3 when no violation is found but the search was bounded: --depth 1 prints safe≤1", async () => {
    const r = await run(["check", "--design", "hw-xcr0-switch", "--backend", "svm", "--depth", "1", "--workers", "0"]);
    expect(r.code).toBe(3);
    expect(r.out).not.toContain("violation (");
    expect(r.out).toMatch(/│ safe≤1 +│/);
    expect(r.out).not.toMatch(/│ safe +│/);
    expect(r.out).toMatch(/\nbounded: 3 [^:\n]*not explored to the fixpoint \(--depth 1\): 6 cells, 0 with a violation\b/);
    const json = await run(["check", "--design", "hw-xcr0-switch", "--backend", "svm", "--depth", "1", "--workers", "0", "--json"]);
    expect(json.code).toBe(3);
    const report = JSON.parse(json.out) as Report;
    expect([report.schemaVersion, report.depth, report.complete]).toEqual([2, 1, false]);
    for (const c of report.cells.filter((x) => x.verdict === "safe")) {
      expect([c.complete, c.stoppedBy, c.depthReached, c.diameter]).toEqual([false, "depth", 1, undefined]);
      expect(c.frontier).toBeGreaterThan(0);
    }
  });

  it("exits 3 when --max-states cuts a safe cell's search short; the cell says how far it got", async () => {
    const r = await run(["check", "--design", "fpstate", "--backend", "vmx", "--shard", "1/6", "--max-states", "20", "--workers", "0", "--json"]);
    expect(r.code).toBe(3);
    const report = JSON.parse(r.out) as Report;
    expect(report.depth).toBeUndefined();
    expect(report.complete).toBe(false);
    const c = report.cells[0]!;
    expect([c.verdict, c.complete, c.stoppedBy, c.states, c.diameter]).toEqual(["safe", false, "max-states", 20, undefined]);
    expect(c.frontier).toBeGreaterThan(0);
    const human = await run(["check", "--design", "fpstate", "--backend", "vmx", "--shard", "1/6", "--max-states", "20", "--workers", "0"]);
    expect(human.code).toBe(3);
    expect(human.out).toContain(`safe≤${c.depthReached}`);
    expect(human.out).toMatch(/\nbounded: 1 [^:\n(]*not explored to the fixpoint: 1 cell, 0 with a violation\b/);
  });

  it("exits 1 with a violation; JSON follows the schema and carries the counterexample", async () => {
    const r = await run(["check", "--design", "asm-unconditional", "--backend", "vmx", "svm", "--depth", "1", "--json"]);
    // A violation is exit 1 even though the other cells' searches were bounded (that alone would be 3).
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out) as Report;
    expect(report.schemaVersion).toBe(2);
    expect(report.depth).toBe(1);
    expect(report.complete).toBe(false);
    expect(report.cells).toHaveLength(2 * 6);
    expect(typeof report.statesPerSecond).toBe("number");
    const bad = report.cells.find((c) => c.backend === "vmx" && c.host.cpuApx && !c.host.kernelApx && !c.guest.apx)!;
    expect(bad.verdict).toBe("violation");
    expect(bad.invariant).toBe("no-host-ud");
    expect(bad.counterexample!.events.length).toBe(1);
    const na = report.cells.find((c) => c.backend === "svm" && c.guest.apx && c.host.cpuApx)!;
    expect(na.verdict).toBe("n/a");
    expect(na.reason).toMatch(/svm/);
    // Nothing animated or chatty on stderr with --json.
    expect(r.err).toBe("");
  });

  it("--trace-out writes scenario files that kvmx run replays to the same violation, and Chrome traces", async () => {
    const out = join(dir, "traces");
    const r = await run(["check", "--design", "asm-unconditional", "early-xcr0-misordered", "--backend", "vmx", "--depth", "1", "--json", "--trace-out", out]);
    expect(r.code).toBe(1);
    type Ce = { invariant: string; failingStep: number; scenarioFile?: string; chromeTraceFile?: string };
    const report = JSON.parse(r.out) as {
      cells: { counterexample?: Ce; assumptionVerdicts?: { counterexample?: Ce }[] }[];
      findings: { counterexample: Ce }[];
    };
    // Every counterexample: the cells' own, those under a swept valuation, and each finding's.
    const all = [
      ...report.cells.flatMap((c) => [c.counterexample, ...(c.assumptionVerdicts ?? []).map((v) => v.counterexample)]),
      ...report.findings.map((f) => f.counterexample),
    ].filter((x): x is Ce => x !== undefined);
    const files = new Set(all.map((c) => c.scenarioFile));
    expect(files.size).toBeGreaterThan(0);
    expect(files.has(undefined)).toBe(false);
    expect(readdirSync(out).filter((f) => f.endsWith(".scenario.yaml"))).toHaveLength(files.size);
    const replayed = new Set<string>();
    for (const c of all) {
      if (replayed.has(c.scenarioFile!)) continue;
      replayed.add(c.scenarioFile!);
      const replay = await run(["run", c.scenarioFile!, "--json"]);
      // Exit 0: the scenario's expectation (this violation, under its valuation) holds.
      expect(replay.code, c.scenarioFile).toBe(0);
      const rj = JSON.parse(replay.out) as { violations: { invariant: string; event: number }[] };
      expect(rj.violations.map((v) => v.invariant)).toContain(c.invariant);
      expect(Math.min(...rj.violations.map((v) => v.event))).toBe(c.failingStep);
      const trace = JSON.parse(readFileSync(c.chromeTraceFile!, "utf8")) as { traceEvents: { ph: string }[] };
      expect(trace.traceEvents.some((e) => e.ph === "X")).toBe(true);
    }
  });

  it("--html writes one self-contained page with the matrix and timelines", async () => {
    const file = join(dir, "report.html");
    const r = await run(["check", "--design", "asm-unconditional", "--backend", "vmx", "--depth", "1", "--html", file]);
    expect(r.code).toBe(1);
    const html = readFileSync(file, "utf8");
    expect(html).toContain("Verdict matrix");
    expect(html).toContain("<svg");
    expect(html).not.toMatch(/<script|<link/i);
  });

  it("--shard 1/2 + 2/2 merged with --merge equals the unsharded run", async () => {
    const args = ["check", "--design", "asm-unconditional", "c-xfeatures", "--backend", "vmx", "--depth", "1", "--json"];
    const whole = JSON.parse((await run(args)).out) as Report;
    const files: string[] = [];
    for (const i of [1, 2]) {
      const r = await run([...args, "--shard", `${i}/2`]);
      const f = join(dir, `shard${i}.json`);
      writeFileSync(f, r.out);
      files.push(f);
    }
    const page = join(dir, "merged.html");
    const merged = await run(["check", "--merge", ...files, "--json", "--html", page]);
    // The merged JSON still renders the timelines (trace XCR0s come back from "0x…" strings).
    expect(readFileSync(page, "utf8")).toContain("<svg");
    // Depth 1 bounds the safe cells: without a violation the merged result would be exit 3.
    expect(merged.code).toBe(whole.cells.some((c) => c.verdict === "violation") ? 1 : 3);
    expect((JSON.parse(merged.out) as Report).complete).toBe(whole.complete);
    const strip = (r: Report) => r.cells.map(({ ...c }) => ({ ...c, elapsedMs: 0 }));
    expect(strip(JSON.parse(merged.out) as Report)).toEqual(strip(whole));
  });

  it("checks a user's design file; a bad one exits 65 with file:line:column", async () => {
    const good = join(dir, "my-design.yaml");
    writeFileSync(
      good,
      [
        "name: my-asm",
        "description: asm-conditional with the store moved into C after the host XCR0 load",
        "source: test",
        "egprHome: regs",
        "actions:",
        "  - { anchor: asm-before-vmenter, op: load-egprs, when: guest-xcr0-apx }",
        "  - { anchor: post-host-xfeatures, op: store-egprs, when: guest-xcr0-apx }",
        "",
      ].join("\n"),
    );
    const r = await run(["check", "--design", good, "--backend", "vmx", "--depth", "2", "--json"]);
    const report = JSON.parse(r.out) as Report;
    expect(report.cells.every((c) => c.design === "my-asm")).toBe(true);
    // Moving the store out of the exit asm leaves regs[] stale when the fastpath reads an EGPR.
    expect(r.code).toBe(1);
    const hPlusGPlus = report.cells.find((c) => c.host.cpuApx && !c.host.kernelApx && c.guest.apx)!;
    expect(hPlusGPlus.invariant).toBe("cache-coherence");
    expect(hPlusGPlus.counterexample!.events).toContainEqual(expect.objectContaining({ kind: "guest-wrmsrns-imm" }));
    // Without APX anywhere the design does nothing, and is safe.
    expect(report.cells.find((c) => !c.host.cpuApx && !c.guest.apx)!.verdict).toBe("safe");
    const bad = join(dir, "bad-design.yaml");
    writeFileSync(bad, "name: broken\negprHome: nowhere\nactions: []\n");
    const b = await run(["check", "--design", bad, "--backend", "vmx", "--depth", "1"]);
    expect(b.code).toBe(65);
    expect(b.err).toContain("bad-design.yaml:");
  });

  it("human output lists each counterexample's events with the failing one, and the replay command with --trace-out", async () => {
    const out = join(dir, "human");
    const r = await run(["check", "--design", "asm-unconditional", "--backend", "vmx", "--depth", "1", "--trace-out", out]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("Counterexamples (shortest, minimised):");
    expect(r.out).toMatch(/asm-unconditional on vmx \[H\+ g-[^\]]*\]: no-host-ud/);
    expect(r.out).toMatch(/1\. guest-xsetbv value=0x[0-9a-f]+ {3}← breaks at vmx:/);
    expect(r.out).toContain(`replay: kvmx run ${join(out, "asm-unconditional.vmx.host-apx.guest-noapx.scenario.yaml")}`);
    // H- g- is the one safe cell (bounded by --depth 1); H- g+ is n/a; the other four break.
    expect(r.out).toMatch(/│ safe≤1 +│/);
    expect(r.out).toMatch(/\nbounded: 1 [^:\n]*not explored to the fixpoint \(--depth 1\): 6 cells, 4 with a violation\b/);
  });

  it("exits 1 with a violation when exploring to the fixpoint; the summary says complete", async () => {
    const r = await run(["check", "--design", "asm-unconditional", "--backend", "vmx", "--workers", "0"]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("violation (no-host-ud)");
    expect(r.out).not.toContain("safe≤");
    expect(r.out).toMatch(/\ncomplete \(every reachable state explored\): 6 cells, 4 with a violation\b/);
  });

  it("--all-invariants keeps exploring and reports more than one invariant where a design breaks several", async () => {
    const first = JSON.parse((await run(["check", "--design", "asm-unconditional", "--backend", "vmx", "--depth", "2", "--json"])).out) as Report;
    const all = JSON.parse((await run(["check", "--design", "asm-unconditional", "--backend", "vmx", "--depth", "2", "--json", "--all-invariants"])).out) as Report & {
      cells: (Cell & { otherCounterexamples?: { invariant: string }[] })[];
    };
    const cellOf = (r: Report) => r.cells.find((c) => c.host.kernelApx && !c.guest.apx)!;
    expect(cellOf(first).invariant).toBe(cellOf(all).invariant);
    expect(cellOf(all).states).toBeGreaterThan(cellOf(first).states);
    const invariants = [cellOf(all).invariant, ...((cellOf(all) as { otherCounterexamples?: { invariant: string }[] }).otherCounterexamples ?? []).map((c) => c.invariant)];
    expect(new Set(invariants).size).toBeGreaterThan(1);
  });

  it("--option runs another alternative of a model assumption, and the scenario file records it", async () => {
    const args = ["check", "--design", "asm-conditional", "--backend", "vmx", "--depth", "1", "--json", "--option", "setXsaveApxAbsent=init-zeros"];
    const r = await run(args);
    expect([1, 3]).toContain(r.code);
    const report = JSON.parse(r.out) as Report;
    for (const c of report.cells.filter((x) => x.counterexample)) expect(c.counterexample!.scenario).toContain("setXsaveApxAbsent: init-zeros");
    // --depth 1 (a valid depth): the exit 2 comes from the --option value alone.
    const bad = await run(["check", "--option", "setXsaveApxAbsent=maybe", "--depth", "1"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("setXsaveApxAbsent");
    const unknown = await run(["check", "--option", "noSuchFact=1", "--depth", "1"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("noSuchFact");
  });

  it("usage errors exit 2", async () => {
    expect((await run(["check", "--depth", "x"])).code).toBe(2);
    // Bounds are optional, but when given they must be ≥ 1 (depth 0 would explore nothing).
    for (const flag of ["--depth", "--max-states", "--max-seconds"]) {
      const r = await run(["check", "--design", "fpstate", "--backend", "vmx", flag, "0"]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(flag);
      expect(r.out).toBe("");
    }
    expect((await run(["check", "--shard", "3/2"])).code).toBe(2);
    expect((await run(["check", "--backend", "nope", "--depth", "1"])).code).toBe(2);
    // A readable result file, so that the refusal is about --shard (an unreadable one is 65 first).
    const shardFile = join(dir, "usage-shard.json");
    writeFileSync(shardFile, "{}");
    const merge = await run(["check", "--merge", shardFile, "--shard", "1/2"]);
    expect(merge.code).toBe(2);
    expect(merge.err).toContain("--merge");
  });
});

// The built CLI runs cells in worker threads that re-load dist/main.js; vitest runs the TypeScript
// in this thread. Compare the two when the build is fresh (CI builds before testing).
const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = join(root, "apps/cli/bin/kvmx.js");
const builtMain = join(root, "apps/cli/dist/main.js");
const newest = (d: string): number =>
  Math.max(0, ...readdirSync(d, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(d, e.name)) : statSync(join(d, e.name)).mtimeMs)));
const staleReason = !existsSync(builtMain)
  ? "apps/cli/dist is not built (pnpm build)"
  : statSync(builtMain).mtimeMs < Math.max(...["apps/cli", "packages/check", "packages/core", "packages/vmx", "packages/svm"].map((p) => newest(join(root, p, "src"))))
    ? "apps/cli/dist is older than the sources (pnpm build)"
    : undefined;
if (staleReason) console.warn(`skipping the built-CLI worker-thread test: ${staleReason}`);

describe.skipIf(staleReason !== undefined)("the built kvmx check with worker threads", () => {
  it("gives the same cells as the in-thread run", async () => {
    const args = ["check", "--design", "asm-conditional", "c-xfeatures", "--backend", "vmx", "sev-es", "--depth", "2", "--json"];
    let out: string;
    try {
      out = execFileSync(process.execPath, [bin, ...args, "--workers", "2"], { encoding: "utf8", maxBuffer: 1 << 28 });
    } catch (err) {
      // Exit 1 (a violation) still prints the report.
      out = (err as { stdout: string }).stdout;
    }
    const threaded = JSON.parse(out) as Report;
    const inThread = JSON.parse((await run(args)).out) as Report;
    const strip = (r: Report) => r.cells.map((c) => ({ ...c, elapsedMs: 0 }));
    expect(strip(threaded)).toEqual(strip(inThread));
  });
});

describe("kvmx check default backends", () => {
  it("leaves out the hypothetical svm-apx unless it is named", async () => {
    const io = captureIo();
    expect(await main(["check", "--design", "asm-conditional", "--depth", "1", "--workers", "0", "--json"], io)).toBe(1);
    const backends = new Set((JSON.parse(io.stdout()) as { cells: { backend: string }[] }).cells.map((c) => c.backend));
    expect(backends).toEqual(new Set(["vmx", "vmx-nested", "tdx", "svm", "sev-es"]));
    const named = captureIo();
    expect(await main(["check", "--design", "asm-conditional", "--backend", "svm-apx", "--depth", "1", "--workers", "0", "--json"], named)).not.toBe(2);
    expect(JSON.parse(named.stdout()).cells.every((c: { backend: string }) => c.backend === "svm-apx")).toBe(true);
  });

  it("sweeps the assumptions: a conditional verdict names the valuation that breaks it and shows its counterexample", async () => {
    // --shard 4/6 of one design on one backend: the H+ g+ cell only; its counterexample is 4 events long.
    const r = await run(["check", "--design", "asm-conditional", "--backend", "vmx", "--shard", "4/6", "--depth", "4", "--workers", "0", "--json"]);
    const j = JSON.parse(r.out) as {
      sweep?: { mode: string; assumptions: string[] };
      cells: { host: { cpuApx: boolean; kernelApx: boolean }; guest: { apx: boolean }; verdict: string; condition?: string; assumptionVerdicts?: { assumptions: Record<string, string>; verdict: string; counterexample?: { invariant: string } }[] }[];
    };
    expect(j.sweep?.mode).toBe("each");
    expect(j.sweep?.assumptions).toContain("egprInitValue");
    const cell = j.cells.find((c) => c.host.cpuApx && !c.host.kernelApx && c.guest.apx)!;
    // Safe under the defaults, broken when disabling APX in XCR0 clears R16–R31 (KVM keeps regs[]).
    expect(cell.verdict).toBe("safe");
    expect(cell.condition).toBe("safe unless xcr0ApxDisable=clear");
    const broken = cell.assumptionVerdicts!.filter((v) => v.verdict === "violation");
    expect(broken.map((v) => v.assumptions)).toEqual([{ xcr0ApxDisable: "clear" }]);
    expect(broken[0]!.counterexample!.invariant).toBe("guest-integrity");
    // --sweep default checks the defaults only: no condition, no per-valuation verdicts.
    const d = JSON.parse((await run(["check", "--design", "asm-conditional", "--backend", "vmx", "--shard", "4/6", "--depth", "4", "--workers", "0", "--json", "--sweep", "default"])).out) as typeof j;
    expect(d.sweep).toBeUndefined();
    expect(d.cells.every((c) => c.condition === undefined && c.assumptionVerdicts === undefined)).toBe(true);
    // Pinning the assumption removes it from the sweep and decides the cell.
    const pinned = JSON.parse((await run(["check", "--design", "asm-conditional", "--backend", "vmx", "--shard", "4/6", "--depth", "4", "--workers", "0", "--json", "--option", "xcr0ApxDisable=clear"])).out) as typeof j;
    expect(pinned.sweep?.assumptions).not.toContain("xcr0ApxDisable");
    expect(pinned.cells.find((c) => c.host.cpuApx && !c.host.kernelApx && c.guest.apx)!.verdict).toBe("violation");
  });

  it("reports the INIT finding once, in a Findings section, and not against the design", async () => {
    // --shard 4/6 of two designs × six profiles: both designs' H+ g+ cells (3 and 9 of 12).
    // Depth 3 is enough for the INIT finding (set-xsave, init, get-xsave).
    const r = await run(["check", "--design", "upstream-v4", "asm-conditional", "--backend", "vmx", "--shard", "4/6", "--depth", "3", "--workers", "0"]);
    expect(r.out).toContain("Findings (KVM code every design of an EGPR home shares");
    expect(r.out.match(/INIT zeroes R16–R31 that KVM keeps in regs\[\]/g)).toHaveLength(1);
    expect(r.out).toMatch(/Met by [^\n]*upstream-v4[^\n]*asm-conditional|Met by [^\n]*asm-conditional[^\n]*upstream-v4/);
    expect(r.out).toContain("docs/findings/init-zeroes-egprs.md");
    // upstream-v4's H+ g+ cell is not a violation: the INIT loss is the finding's.
    expect(r.out).toMatch(/│ upstream-v4 +│ safe≤3 +│/);
    const j = JSON.parse((await run(["check", "--design", "upstream-v4", "--backend", "vmx", "--shard", "4/6", "--depth", "3", "--workers", "0", "--json", "--no-findings", "--sweep", "default"])).out) as { findings: unknown[]; cells: { verdict: string; invariant?: string }[] };
    // Without the classification the same loss is the design's violation.
    expect(j.findings).toEqual([]);
    expect(j.cells.some((c) => c.verdict === "violation" && c.invariant === "uapi-truth")).toBe(true);
  });

  it("--sweep all with too many valuations is a usage error that says how to pin some", async () => {
    const r = await run(["check", "--design", "upstream-v4", "--backend", "vmx", "--sweep", "all", "--depth", "1"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--sweep all: .*valuations.*pin some with --option/);
  });
});
