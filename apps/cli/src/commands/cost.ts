import { costRows, DEFAULT_WEIGHTS, runMatrix, type CheckReport, type CostWeights } from "@kvmx/check";
import type { Command } from "commander";
import { DEFAULT_CHECK_BACKENDS } from "../backends.js";
import { BACKEND_CHOICES, choicesHint, DESIGN_CHOICES } from "../choices.js";
import { stdoutColour, toJson, type Io } from "../io.js";
import { renderCostTable } from "../cost-table.js";
import { buildCheckProvider, loadDesignFiles, readWeightsFile } from "./check.js";

/**
 * The version of `kvmx cost --json` (host, rows, weights): its own, not the check report's
 * SCHEMA_VERSION — the rows did not change when check results gained `complete` (version 2).
 */
const COST_SCHEMA_VERSION = 1;

interface CostOptions {
  design?: string[];
  backend?: string[];
  json?: boolean;
  weights?: string;
}

/**
 * `kvmx cost`: the cost table alone — representative round trips (guest APX on/off × fastpath and
 * full exit) run on the model for each design and backend, counters read from the Machine, weighed
 * into ~cycles with a documented, overridable table. No exploration, so it is fast.
 */
export function register(program: Command, io: Io): void {
  program
    .command("cost")
    .description("Price each design per VM-exit round trip (XSETBVs, EGPR moves, PUSH2/POP2, branches, XSAVE bytes, ~cycles).")
    .option("--design <name|file...>", `built-in designs, ${choicesHint(DESIGN_CHOICES)}, or design files; default: all built-ins`)
    .option("--backend <name...>", `backends, ${choicesHint(BACKEND_CHOICES)}; default: all but the hypothetical svm-apx`)
    .option("--json", `print rows as JSON (schemaVersion ${COST_SCHEMA_VERSION})`)
    .option("--weights <file>", "cycle weights (JSON/YAML) overriding the defaults")
    .action(async (opts: CostOptions) => {
      // Unknown --design/--backend names were refused before the action (main.ts): exit 2.
      const backends = opts.backend ?? DEFAULT_CHECK_BACKENDS;
      const weights: CostWeights = opts.weights ? await readWeightsFile(io, opts.weights) : DEFAULT_WEIGHTS;
      const designFiles = await loadDesignFiles(io, opts.design ?? []);
      const provider = buildCheckProvider({ designFiles });
      const designs = opts.design?.map((a) => designFiles.find((f) => f.arg === a)?.name ?? a);
      // Depth 0: the start state only, no exploration; the cells' cost probes do the work.
      const report = await runMatrix(provider, {
        depth: 0,
        weights,
        ...(designs ? { designs } : {}),
        backends,
      });
      if (opts.json) {
        io.out(toJson({ schemaVersion: COST_SCHEMA_VERSION, host: { cpuApx: true, kernelApx: false }, rows: costRows(report), weights }));
      } else {
        io.out(renderCostTable(report, stdoutColour(io)) + "\n");
        io.out("~cycles weighs the counters with estimates: `kvmx cost --json` shows each weight's source,\n--weights FILE overrides them.\n");
      }
    });
}

