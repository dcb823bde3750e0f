import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, bench, describe } from "vitest";
import { vmxBackend } from "@kvmx/vmx";
import { sevEsBackend, svmApxBackend, svmBackend } from "@kvmx/svm";
import { DEFAULT_DEPTH, machineProvider, runMatrix, type CheckReport } from "../src/index.js";

/**
 * DESIGN.md goal: the default `kvmx check` matrix, exhaustive to its default depth, in seconds on 2
 * cores (goal ≤ 10 s wall, ≤ 1 GiB resident), with states/s reported. Two measurements:
 * - the engine in this thread over vmx, svm, svm-apx and sev-es (states/s, transitions/s);
 * - the built CLI, `kvmx check --json` with its default worker threads, in a child process: wall
 *   time, CPU time and peak RSS (the workers are threads, so the child's maxRSS covers them).
 */
const GOAL_WALL_S = 10;
const GOAL_RSS_MIB = 1024;
const lines: string[] = [];
// tinybench may call a task more than once even with iterations: 1; each measurement runs once.
const done = new Set<string>();
const once = (name: string): boolean => !done.has(name) && done.add(name) !== undefined;

const cliMain = fileURLToPath(new URL("../../../apps/cli/dist/main.js", import.meta.url));

describe("kvmx check, default matrix", () => {
  bench(
    `engine in-thread, depth ${DEFAULT_DEPTH}`,
    async () => {
      if (!once("engine")) return;
      const provider = machineProvider({ backends: [vmxBackend, svmBackend, svmApxBackend, sevEsBackend] });
      let r: CheckReport;
      try {
        r = await runMatrix(provider, { depth: DEFAULT_DEPTH, workers: 0 });
      } catch (err) {
        lines.push(`engine in-thread: the model failed: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      const states = r.cells.reduce((n, c) => n + c.states, 0);
      const transitions = r.cells.reduce((n, c) => n + c.transitions, 0);
      const s = r.elapsedMs / 1000;
      lines.push(
        `engine in-thread, depth ${r.depth}: ${r.cells.length} cells, ${states} states, ${transitions} transitions in ${s.toFixed(2)} s — ` +
          `${Math.round(states / s)} states/s, ${Math.round(transitions / s)} transitions/s (one thread)`,
      );
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );

  bench(
    "built kvmx check --json (worker threads)",
    () => {
      if (!once("cli")) return;
      if (!existsSync(cliMain)) {
        lines.push(`kvmx check: ${cliMain} is not built (pnpm build); not measured`);
        return;
      }
      // The child reports its own peak RSS and CPU time on stderr when it exits.
      const script =
        `const { main } = await import(${JSON.stringify(`file://${cliMain}`)});` +
        `process.on("exit", () => { const u = process.resourceUsage(); process.stderr.write("\\nKVMX_USAGE " + JSON.stringify({ maxRssKiB: u.maxRSS, cpuUs: u.userCPUTime + u.systemCPUTime }) + "\\n"); });` +
        `process.exitCode = await main(["check", "--json"]);`;
      const t0 = performance.now();
      const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", maxBuffer: 1 << 30 });
      const wall = (performance.now() - t0) / 1000;
      const usage = /KVMX_USAGE (\{.*\})/.exec(child.stderr ?? "");
      if (!usage) {
        lines.push(`kvmx check: no usage report (exit ${child.status}): ${(child.stderr ?? "").slice(0, 400)}`);
        return;
      }
      const u = JSON.parse(usage[1]!) as { maxRssKiB: number; cpuUs: number };
      const rssMiB = u.maxRssKiB / 1024;
      let detail = `exit ${child.status}`;
      if (child.status === 0 || child.status === 1) {
        const r = JSON.parse(child.stdout) as CheckReport;
        const states = r.cells.reduce((n, c) => n + c.states, 0);
        detail += `, ${r.cells.length} cells, ${states} states, ${r.statesPerSecond} states/s`;
      } else {
        lines.push(`kvmx check: the run failed (${detail}): ${(child.stderr ?? "").split("\n")[0]}; goals not measured`);
        return;
      }
      lines.push(
        `kvmx check (default, built, worker threads): wall ${wall.toFixed(2)} s (goal ≤ ${GOAL_WALL_S} s: ${wall <= GOAL_WALL_S ? "met" : "MISSED"}), ` +
          `CPU ${(u.cpuUs / 1e6).toFixed(2)} s, peak RSS ${rssMiB.toFixed(0)} MiB (goal ≤ ${GOAL_RSS_MIB} MiB: ${rssMiB <= GOAL_RSS_MIB ? "met" : "MISSED"}); ${detail}`,
      );
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});

afterAll(() => {
  console.log(["", "== kvmx check benchmark", ...lines, "(wall times depend on machine load; CPU time is the steadier figure)"].join("\n"));
});
