import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { afterAll, bench, describe } from "vitest";
import { vmxBackend, vmxNestedBackend } from "@kvmx/vmx";
import { eventKey, explore, machineProvider, runCell, type CellSpec, type CheckReport } from "../src/index.js";
import { toyModel, toyStart } from "../test/toy-model.js";

/**
 * Issue 9's figures, printed as ratios against their goals (never asserted):
 * - the engine's ceiling: transitions per CPU-second on the toy model (no model cost at all);
 * - the model: transitions per CPU-second on real cells explored to the fixpoint, beside the ceiling
 *   and the goal of 150k per core;
 * - the default `kvmx check` matrix through the built CLI (worker threads, the default sweep), each
 *   cell bounded by KVMX_BENCH_CELL_SECONDS (default 20; 0: no bound, every cell to its fixpoint or a
 *   violation — about eight minutes on 2 cores): wall, CPU and peak RSS against ≤ 30 s and
 *   ≤ 1 GiB, how many cells reached the fixpoint, and for every cell that did not, its states per depth;
 *   then the rate the 30 s goal asks of each core for that many transitions;
 * - where a transition's time goes in the largest kind of cell (nested VMX, APX host and guest): the
 *   mean cost of a KVM_RUN event and of a uAPI call on states sampled from its search, and which
 *   KVM_RUN events led every sampled state to the same next state as another event did.
 * CPU time is the steady figure on a loaded machine; wall time is what a user waits.
 */
const GOAL_WALL_S = 30;
const GOAL_RSS_MIB = 1024;
const GOAL_TPS = 150_000;
const CELL_SECONDS = Number(process.env.KVMX_BENCH_CELL_SECONDS ?? 20);
const lines: string[] = [];
// tinybench may call a task more than once even with iterations: 1; each measurement runs once.
const done = new Set<string>();
const once = (name: string): boolean => !done.has(name) && done.add(name) !== undefined;
const ratio = (x: number, goal: number) => `${(x / goal).toFixed(2)}× the goal`;
const cpuSeconds = <T>(f: () => T): { value: T; cpu: number } => {
  const c0 = process.cpuUsage();
  const value = f();
  const c = process.cpuUsage(c0);
  return { value, cpu: (c.user + c.system) / 1e6 };
};
let ceiling = 0;

const cliMain = fileURLToPath(new URL("../../../apps/cli/dist/main.js", import.meta.url));

describe("kvmx check", () => {
  bench(
    "engine ceiling (toy model)",
    () => {
      if (!once("toy")) return;
      const { value: r, cpu } = cpuSeconds(() => explore(toyModel({ modX: 400, modY: 400 }), toyStart()));
      ceiling = r.transitions / cpu;
      lines.push(`engine ceiling, toy model: ${r.states.toLocaleString("en")} states, ${r.transitions.toLocaleString("en")} transitions, ${Math.round(ceiling).toLocaleString("en")} transitions/CPU-s`);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );

  bench(
    "model throughput (vmx cells to the fixpoint)",
    () => {
      if (!once("model")) return;
      const cells: [string, CellSpec, "default" | "each"][] = [
        ["upstream-v4 vmx H+ g+, defaults only", { design: "upstream-v4", backend: "vmx", host: { cpuApx: true, kernelApx: false }, guest: { apx: true } }, "default"],
        ["upstream-v4 vmx H+ g+, swept (each)", { design: "upstream-v4", backend: "vmx", host: { cpuApx: true, kernelApx: false }, guest: { apx: true } }, "each"],
        ["fpstate vmx H- g-, swept (each)", { design: "fpstate", backend: "vmx", host: { cpuApx: false, kernelApx: false }, guest: { apx: false } }, "each"],
      ];
      for (const [name, cell, sweep] of cells) {
        const provider = machineProvider({ backends: [vmxBackend], sweep });
        const { value: r, cpu } = cpuSeconds(() => runCell(provider, cell, { cost: false }));
        const tps = r.transitions / cpu;
        lines.push(
          `model, ${name}: ${r.complete ? "complete" : `bounded (${r.stoppedBy})`}, ${r.states.toLocaleString("en")} states, ` +
            `${r.transitions.toLocaleString("en")} transitions in ${cpu.toFixed(2)} CPU-s = ${Math.round(tps).toLocaleString("en")}/CPU-s ` +
            `(${ratio(tps, GOAL_TPS)} of ${GOAL_TPS.toLocaleString("en")}; ${ceiling > 0 ? `${((tps / ceiling) * 100).toFixed(1)}% of the engine ceiling` : "ceiling not measured"})`,
        );
      }
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );

  bench(
    "host-NMI folding (a -mapxf cell both ways)",
    () => {
      if (!once("fold")) return;
      // docs/model.md#host-nmi-folding: the same cell with an `nmi` event per host site, and folded.
      const cell: CellSpec = { design: "hw-xcr0-switch", backend: "vmx", host: { cpuApx: true, kernelApx: true }, guest: { apx: true } };
      const runs = [false, true].map((fold) => {
        const provider = machineProvider({ backends: [vmxBackend], sweep: "default", foldHostNmis: fold });
        return cpuSeconds(() => runCell(provider, cell, { cost: false, collect: "per-invariant" }));
      });
      const [asEvents, folded] = runs as [(typeof runs)[0], (typeof runs)[0]];
      const same = asEvents.value.verdict === folded.value.verdict && asEvents.value.invariant === folded.value.invariant && asEvents.value.complete && folded.value.complete;
      lines.push(
        `host-NMI folding, hw-xcr0-switch vmx Hk g+ (defaults, every invariant): ${asEvents.value.states.toLocaleString("en")} → ${folded.value.states.toLocaleString("en")} states ` +
          `(${(asEvents.value.states / folded.value.states).toFixed(1)}× fewer), ${asEvents.cpu.toFixed(1)} → ${folded.cpu.toFixed(1)} CPU-s ` +
          `(${(asEvents.cpu / folded.cpu).toFixed(1)}× faster); ${same ? "same verdict, both complete" : "RESULTS DIFFER"}`,
      );
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );

  bench(
    "where a transition goes (nested VMX, APX host and guest)",
    () => {
      if (!once("events")) return;
      const cell: CellSpec = { design: "upstream-v4", backend: "vmx-nested", host: { cpuApx: true, kernelApx: false }, guest: { apx: true } };
      const subject = machineProvider({ backends: [vmxNestedBackend], sweep: "default" }).subject(cell);
      const model = subject.explore ?? subject.model;
      // Every 37th state the search applies an event to, from its first 3,000 states (breadth-first: all depths up to ~7).
      const samples: unknown[] = [];
      let seen = 0;
      const sampling = Object.create(model) as typeof model;
      sampling.apply = (st, e, t, v) => {
        if (seen++ % 37 === 0 && samples.length < 400) samples.push(st);
        return model.apply(st, e, t, v);
      };
      explore(sampling, subject.start, { maxStates: 3000, collect: "per-invariant" });
      const cost = { run: { us: 0, n: 0 }, uapi: { us: 0, n: 0 } };
      /** Per KVM_RUN event: where it led from each sampled state (the next state's fingerprint and the invariants broken; "" where not offered). */
      const outcomes = new Map<string, string[]>();
      const h = { hi: 0, lo: 0 };
      // A first pass warms the JIT up (the search above ran only a few seconds); the second is timed.
      for (const st of samples) for (const e of model.events(st)) model.apply(st, e, undefined, 0);
      samples.forEach((st, at) => {
        for (const e of model.events(st)) {
          const t0 = performance.now();
          const r = model.apply(st, e, undefined, 0);
          const us = (performance.now() - t0) * 1000;
          const free = subject.designFree?.(e) ?? false;
          const c = free ? cost.uapi : cost.run;
          c.us += us;
          c.n++;
          if (!free) {
            model.fingerprint?.(r.state, h);
            const key = eventKey(e);
            const to = outcomes.get(key) ?? new Array<string>(samples.length).fill("");
            to[at] = `${h.hi}:${h.lo}|${r.violations.map((v) => v.invariant).join(",")}`;
            outcomes.set(key, to);
          }
        }
      });
      const mean = (c: { us: number; n: number }) => (c.n > 0 ? c.us / c.n : 0);
      const share = cost.run.us / (cost.run.us + cost.uapi.us);
      lines.push(
        `where a transition goes, ${cell.design} vmx-nested H+ g+ (${samples.length} sampled states): a KVM_RUN event ${mean(cost.run).toFixed(1)} µs, ` +
          `a uAPI call ${mean(cost.uapi).toFixed(1)} µs; KVM_RUN events are ${(share * 100).toFixed(0)}% of the time`,
      );
      // Classes of KVM_RUN events offered in the same sampled states that reached the same next state
      // (and broke the same invariants) in every one of them.
      const classes = new Map<string, string[]>();
      for (const [key, to] of outcomes) {
        const signature = to.join(";");
        classes.set(signature, [...(classes.get(signature) ?? []), key]);
      }
      for (const members of classes.values()) {
        if (members.length > 1) lines.push(`  same next state in every sampled state where offered: ${members.join(", ")}`);
      }
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );

  bench(
    "built kvmx check --json, default matrix (worker threads)",
    () => {
      if (!once("cli")) return;
      if (!existsSync(cliMain)) {
        lines.push(`default matrix: ${cliMain} is not built (pnpm build); not measured`);
        return;
      }
      // The child reports its own peak RSS and CPU time on stderr when it exits (workers are threads: maxRSS covers them).
      const script =
        `const { main } = await import(${JSON.stringify(`file://${cliMain}`)});` +
        `process.on("exit", () => { const u = process.resourceUsage(); process.stderr.write("\\nKVMX_USAGE " + JSON.stringify({ maxRssKiB: u.maxRSS, cpuUs: u.userCPUTime + u.systemCPUTime }) + "\\n"); });` +
        `process.exitCode = await main(${JSON.stringify(["check", "--json", ...(CELL_SECONDS > 0 ? ["--max-seconds", String(CELL_SECONDS)] : [])])});`;
      const t0 = performance.now();
      const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", maxBuffer: 1 << 30 });
      const wall = (performance.now() - t0) / 1000;
      const usage = /KVMX_USAGE (\{.*\})/.exec(child.stderr ?? "");
      if (!usage || ![0, 1, 3].includes(child.status ?? -1)) {
        lines.push(`default matrix: the run failed (exit ${child.status}): ${(child.stderr ?? "").slice(0, 400)}`);
        return;
      }
      const u = JSON.parse(usage[1]!) as { maxRssKiB: number; cpuUs: number };
      const rssMiB = u.maxRssKiB / 1024;
      const r = JSON.parse(child.stdout) as CheckReport;
      const explored = r.cells.filter((c) => c.verdict !== "n/a");
      const transitions = r.cells.reduce((n, c) => n + c.transitions, 0);
      const incomplete = explored.filter((c) => !c.complete && c.verdict !== "violation");
      lines.push(
        `default matrix (${CELL_SECONDS > 0 ? `each cell ≤ ${CELL_SECONDS} s` : "no bound"}): wall ${wall.toFixed(1)} s (${ratio(wall, GOAL_WALL_S)} of ≤ ${GOAL_WALL_S} s), ` +
          `CPU ${(u.cpuUs / 1e6).toFixed(1)} s, peak RSS ${rssMiB.toFixed(0)} MiB (${ratio(rssMiB, GOAL_RSS_MIB)} of ≤ ${GOAL_RSS_MIB} MiB); ` +
          `${r.cells.length} cells, ${explored.length} explored, ${explored.length - incomplete.length} with a final verdict, ${incomplete.length} bounded; ` +
          `${transitions.toLocaleString("en")} transitions = ${Math.round(transitions / (u.cpuUs / 1e6)).toLocaleString("en")}/CPU-s`,
      );
      // What ≤ 30 s would ask of each core for this many transitions (at least: a bounded cell has more).
      const cores = availableParallelism();
      const needed = transitions / (GOAL_WALL_S * cores);
      const rate = transitions / (u.cpuUs / 1e6);
      lines.push(
        `  for ≤ ${GOAL_WALL_S} s on ${cores} cores, ${incomplete.length > 0 ? "at least " : ""}${transitions.toLocaleString("en")} transitions need ` +
          `${Math.round(needed).toLocaleString("en")}/CPU-s per core: ${(needed / rate).toFixed(1)}× the rate measured here, ${(needed / GOAL_TPS).toFixed(1)}× the ${GOAL_TPS.toLocaleString("en")} goal`,
      );
      for (const c of incomplete) {
        lines.push(`  bounded: ${c.design} ${c.backend} ${c.host.cpuApx ? (c.host.kernelApx ? "Hk" : "H+") : "H-"} g${c.guest.apx ? "+" : "-"} — ${c.states.toLocaleString("en")} states, depth ${c.depthReached}, frontier ${c.frontier.toLocaleString("en")}, states per depth ${JSON.stringify(c.statesPerDepth)}`);
      }
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});

afterAll(() => {
  console.log(["", "== kvmx check benchmark", ...lines, "(CPU time is the steady figure on a loaded machine; wall time is what a user waits)"].join("\n"));
});
