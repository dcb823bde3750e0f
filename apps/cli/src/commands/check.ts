/**
 * `kvmx check`: the verdict matrix (designs × backends × host/guest profiles) explored by @kvmx/check
 * over core's Machine, with shortest counterexamples as scenario files and the cost per round trip.
 * Concrete backends come from ../backends.ts; worker threads re-load this module (see the bottom of
 * the imports) and build the same provider from CheckProviderInit.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import {
  ASSUMPTIONS,
  BUILTIN_DESIGNS,
  builtinDesign,
  EVENT_KINDS,
  InputError,
  KvmxError,
  parseDesignFile,
  type CoreEventKind,
  type Design,
  type ModelOptions,
} from "@kvmx/core";
import {
  cellId,
  chromeTrace,
  COSTED_HOST,
  DEFAULT_WEIGHTS,
  eventLabel,
  isCheckWorker,
  machineProvider,
  mergeReports,
  parseShard,
  parseWeights,
  profileLabel,
  profileTag,
  readReport,
  renderHtmlReport,
  reportFailed,
  reportIncomplete,
  cellBounded,
  findingValuationText,
  guestKind,
  GUEST_KIND_NAMES,
  GUEST_KINDS,
  hostKind,
  HOST_KIND_NAMES,
  HOST_KINDS,
  renderJunit,
  renderTap,
  runMatrix,
  selectCells,
  unknownCellIds,
  type CellSelection,
  type GuestKind,
  type HostKind,
  serveCheckWorker,
  verdictGrid,
  verdictText,
  type CellResult,
  type CounterexampleReport,
  type CheckProvider,
  type CheckReport,
  type CostWeights,
  type MatrixProgress,
} from "@kvmx/check";
import { Option, type Command } from "commander";
import ora from "ora";
import pc from "picocolors";
import { parse as parseYaml } from "yaml";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { stdoutColour, toJson, type Io } from "../io.js";
import { renderCostTable } from "../cost-table.js";
import { renderTable } from "../table.js";
import { ASSUMPTION_CHOICES, BACKEND_CHOICES, choicesHint, DESIGN_CHOICES, EVENT_KIND_CHOICES } from "../choices.js";
import { BACKENDS, DEFAULT_CHECK_BACKENDS } from "../backends.js";
import { counterexampleStates } from "../counterexample-states.js";


// Worker threads load this very module (the built main.js) and serve cells; see runMatrix.
if (isCheckWorker()) serveCheckWorker((init) => buildCheckProvider(init as CheckProviderInit));

interface CheckOptions {
  design?: string[];
  backend?: string[];
  depth?: string;
  maxSeconds?: string;
  json?: boolean;
  html?: string;
  traceOut?: string;
  shard?: string;
  merge?: string[];
  workers?: string;
  weights?: string;
  allInvariants?: boolean;
  maxStates?: string;
  exclude?: string[];
  option?: string[];
  sweep?: string;
  findings?: boolean;
  list?: boolean;
  cell?: string[];
  host?: string[];
  guest?: string[];
  format?: CheckFormat;
  cost?: boolean;
  verbose?: boolean;
}

const FORMATS = ["text", "tap", "junit"] as const;
type CheckFormat = (typeof FORMATS)[number];
/** `--host` takes the kind names and the matrix header's tags (H-, H+, Hk). */
const HOST_CHOICES = [...HOST_KIND_NAMES, ...HOST_KIND_NAMES.map((k) => HOST_KINDS[k].tag)];
const hostKindOf = (text: string): HostKind => HOST_KIND_NAMES.find((k) => k === text || HOST_KINDS[k].tag === text)!;

export function register(program: Command, io: Io): void {
  program
    .command("check")
    .description(
      "Explore every reachable state of each design × backend × host/guest profile and report the verdict matrix, " +
        "shortest counterexamples and costs. A bare `safe` means every reachable state was checked; `safe≤N` means the search " +
        "was bounded (--depth, --max-states, --max-seconds) and found no violation in sequences of at most N events. " +
        "Exit status: 0 every cell complete and safe, 1 a violation (the default matrix includes designs that are unsafe by " +
        "construction), 3 no violation found but some cell's search was bounded.",
    )
    .option("--design <name|file...>", `built-in designs, ${choicesHint(DESIGN_CHOICES)}, or design files (YAML/JSON); default: all built-ins`)
    .option("--backend <name...>", `backends, ${choicesHint(BACKEND_CHOICES)}; default: all but the hypothetical svm-apx`)
    .option("--depth <n>", "explore event sequences of at most n events (default: until no new state appears)")
    .option("--max-states <n>", "stop a cell's search after this many distinct states (its verdict is then bounded)")
    .option("--max-seconds <s>", "stop a cell's search after this many seconds (its verdict is then bounded)")
    .option("--json", "print the result as JSON (schemaVersion 2)")
    .option("--html <file>", "write a self-contained HTML report with timelines")
    .option("--trace-out <dir>", "write each counterexample as a scenario file (kvmx run replays it) and a Chrome trace")
    .option("--shard <i/n>", "check only the i-th of n slices of the matrix")
    .option("--merge <files...>", "combine shard results (--json files) into one report instead of checking")
    .option("--workers <n>", "worker threads (0 or 1: in this thread); default: one per core")
    .option("--weights <file>", "cycle weights for the cost estimate (JSON/YAML)")
    .option("--all-invariants", "keep exploring after a violation and report the shortest counterexample of every invariant")
    .option("--exclude <event-kinds...>", `leave these event kinds out of the explored alphabet (e.g. migrate nmi): ${choicesHint(EVENT_KIND_CHOICES)}`)
    .option("--option <name=value...>", `pin a model assumption to one alternative (--option setXsaveApxAbsent=init-zeros); name ${choicesHint(ASSUMPTION_CHOICES)}; \`kvmx assumptions\` gives the values and sources`)
    .addOption(
      new Option("--sweep <mode>", "assumption valuations every cell is checked under: each (the defaults and every single deviation), all (every combination), default (the defaults only)")
        .choices(SWEEP_MODES)
        .default("each"),
    )
    .option("--no-findings", "report every violation as the design's, without separating out findings (code every design of an EGPR home shares)")
    .option("--list", "print the cells the other options select (id, design, backend, host/guest start; with --json an array) and stop, exploring nothing")
    .option(
      "--cell <id...>",
      "check only these cells, by the ids `kvmx check --list` prints; intersected with --design, --backend, --host and --guest " +
        "(without --backend every backend's cells can be named, svm-apx too)",
    )
    .addOption(
      new Option("--host <kind...>", `only these host starts: ${HOST_KIND_NAMES.map((k) => `${k} (${HOST_KINDS[k].tag}, ${HOST_KINDS[k].description})`).join(", ")}; default: all`)
        .choices(HOST_CHOICES),
    )
    .addOption(
      new Option("--guest <kind...>", `only these guest starts: ${GUEST_KIND_NAMES.map((k) => `${k} (${GUEST_KINDS[k].tag}, ${GUEST_KINDS[k].description})`).join(", ")}; default: both`)
        .choices(GUEST_KIND_NAMES),
    )
    .addOption(
      new Option(
        "--format <format>",
        "output format: text (the matrix; the default), tap (TAP version 13, a test per cell: a violation is `not ok`, n/a `# SKIP`, " +
          "a bounded search `not ok … # TODO`, which TAP consumers do not count as a failure), junit (JUnit XML, a <testsuite> per backend: " +
          "a violation is a <failure>, n/a and bounded cells <skipped/>); not with --json",
      ).choices(FORMATS),
    )
    .option("--no-cost", "leave out the cost per round trip (not measured, not printed)")
    .option("--verbose", "text output: under each counterexample, the state after every event (live and guest XCR0, whose values are in R16–R31, R16, regs_avail/dirty)")
    .action(async (opts: CheckOptions) => {
      checkOutputOptions(opts);
      const weights = opts.weights ? await readWeightsFile(io, opts.weights) : DEFAULT_WEIGHTS;
      if (opts.list) {
        io.out(await listCells(io, opts));
        return;
      }
      const report = opts.merge ? await mergeFiles(io, opts) : await check(io, opts, weights);
      if (opts.traceOut) await writeTraces(io, report, opts.traceOut);
      if (opts.html) await writeFile(resolve(io.cwd, opts.html), renderHtmlReport(report, { title: "kvmx check", weights }));
      if (opts.json) io.out(toJson(report));
      else if (opts.format === "tap") io.out(renderTap(report));
      else if (opts.format === "junit") io.out(renderJunit(report, { name: "kvmx check" }));
      else io.out(renderHuman(report, stdoutColour(io), { cost: opts.cost !== false, ...(opts.verbose ? { states: counterexampleStates } : {}) }));
      if (reportFailed(report)) throw new CommandExit(ExitCode.checkFailed);
      if (reportIncomplete(report)) throw new CommandExit(ExitCode.incomplete);
    });
}

/** Combinations of output options that cannot both hold. */
function checkOutputOptions(opts: CheckOptions): void {
  if (opts.format && opts.json) throw new KvmxError("--format and --json are two output formats; give one", "usage");
  if (opts.verbose && (opts.json || (opts.format && opts.format !== "text"))) {
    throw new KvmxError("--verbose adds the states to the text output; it takes no --json or --format tap/junit (JSON has the events and traces)", "usage");
  }
  if (opts.list && (opts.merge || (opts.format && opts.format !== "text"))) throw new KvmxError("--list prints the cells as text or --json; it takes no --merge or --format", "usage");
}

/** The cells the options select, after checking every --cell id names one. */
function selection(opts: CheckOptions, provider: CheckProvider, init: CheckProviderInit): CellSelection {
  const designArgs = opts.design ?? [];
  const cells = opts.cell ?? [];
  const unknown = unknownCellIds(provider, cells);
  if (unknown.length > 0) {
    throw new KvmxError(`--cell: unknown cell${unknown.length > 1 ? "s" : ""} ${unknown.map((x) => `"${x}"`).join(", ")} (\`kvmx check --list\` lists them, \`--list --backend svm-apx\` the hypothetical backend's; a design file's cells need --design FILE)`, "usage");
  }
  const sel: CellSelection = {
    ...(designArgs.length > 0 ? { designs: resolveDesignNames(designArgs, init) } : {}),
    // A named cell may be on any backend; otherwise the default matrix leaves out the hypothetical ones.
    ...(opts.backend ? { backends: opts.backend } : cells.length > 0 ? {} : { backends: DEFAULT_CHECK_BACKENDS }),
    ...(opts.host ? { hosts: [...new Set(opts.host.map(hostKindOf))] } : {}),
    ...(opts.guest ? { guests: opts.guest as GuestKind[] } : {}),
    ...(cells.length > 0 ? { cells } : {}),
  };
  if (selectCells(provider, sel).cells.length === 0 && (cells.length > 0 || opts.host || opts.guest)) {
    throw new KvmxError("no cell matches every filter (--cell is intersected with --design, --backend, --host and --guest; `kvmx check --list` shows what they select)", "usage");
  }
  return { ...sel, ...(opts.shard ? { shard: parseShard(opts.shard) } : {}) };
}

/** `--list`: the selected cells, one a line (id, design, backend, start), or a JSON array. */
async function listCells(io: Io, opts: CheckOptions): Promise<string> {
  const init = await providerInit(io, opts);
  const provider = providerFor(init);
  const { cells } = selectCells(provider, selection(opts, provider, init));
  const rows = cells.map((c) => ({ id: cellId(c), design: c.design, backend: c.backend, host: hostKind(c.host), guest: guestKind(c.guest), profile: profileLabel(c) }));
  if (opts.json) return toJson(rows);
  const w = (k: "id" | "design" | "backend") => Math.max(0, ...rows.map((r) => r[k].length));
  return rows.map((r) => `${r.id.padEnd(w("id"))}  ${r.design.padEnd(w("design"))}  ${r.backend.padEnd(w("backend"))}  ${r.profile}`).join("\n") + (rows.length ? "\n" : "");
}

async function providerInit(io: Io, opts: CheckOptions): Promise<CheckProviderInit> {
  return {
    designFiles: await loadDesignFiles(io, opts.design ?? []),
    exclude: eventKinds(opts.exclude ?? []),
    options: modelOptions(opts.option ?? []),
    sweep: sweepMode(opts.sweep ?? "each"),
    findings: opts.findings !== false,
  };
}

function providerFor(init: CheckProviderInit): CheckProvider {
  try {
    return buildCheckProvider(init);
  } catch (err) {
    // Too many valuations for one search (--sweep all): say which flag fixes it.
    if (err instanceof RangeError) throw new KvmxError(`--sweep ${init.sweep}: ${err.message}`, "usage");
    throw err;
  }
}

async function check(io: Io, opts: CheckOptions, weights: CostWeights): Promise<CheckReport> {
  const depth = opts.depth !== undefined ? positiveInt(opts.depth, "--depth", 1) : undefined;
  const init = await providerInit(io, opts);
  const provider = providerFor(init);
  const sel = selection(opts, provider, init);
  if (depth === undefined && !opts.maxStates && !opts.maxSeconds) {
    const large = selectCells(provider, sel).cells.filter(
      (c) => hasLargeCells(c.backend) && (c.host.cpuApx || c.guest.apx) && provider.notApplicable(c) === undefined,
    );
    if (large.length > 0) {
      io.err(
        `kvmx check: ${large.length} nested-VMX cell${large.length === 1 ? "" : "s"} with APX will be explored to the fixpoint with no budget; ` +
          "the largest take 2–3 minutes each (the whole default matrix: about 8 minutes and 860 MiB on 2 cores). --max-seconds N bounds each cell (its verdict then says safe≤N).\n",
      );
    }
  }
  const progress = startProgress(io, !opts.json && !(opts.format && opts.format !== "text"));
  try {
    return await runMatrix(provider, {
      ...(depth !== undefined ? { depth } : {}),
      collect: opts.allInvariants ? "per-invariant" : "first",
      weights,
      ...(opts.cost === false ? { cost: false } : {}),
      ...sel,
      ...(opts.maxStates ? { maxStates: positiveInt(opts.maxStates, "--max-states", 1) } : {}),
      ...(opts.maxSeconds ? { maxSeconds: positiveInt(opts.maxSeconds, "--max-seconds", 1) } : {}),
      ...workerOptions(opts, init),
      onProgress: progress.update,
    });
  } finally {
    progress.stop();
  }
}

/**
 * Backends whose APX cells have hundreds of thousands of states (docs/model.md#speed): those with
 * nesting, where every L1 and L2 event meets every ioctl and NMI.
 */
const hasLargeCells = (backend: string): boolean => BACKENDS.find((b) => b.name === backend)?.nested !== undefined;

/** Worker threads need built JavaScript (a worker cannot load TypeScript sources, as under vitest). */
function workerOptions(opts: CheckOptions, init: CheckProviderInit) {
  const url = new URL(import.meta.url);
  const runsBuilt = url.pathname.endsWith(".js");
  const requested = opts.workers !== undefined ? positiveInt(opts.workers, "--workers", 0) : Math.min(availableParallelism(), 8);
  return runsBuilt ? { workers: requested, worker: { url, init } } : { workers: 0 };
}

function resolveDesignNames(args: readonly string[], init: CheckProviderInit): string[] {
  // A file argument stands for the design it defines; a name stands for itself.
  return args.map((a) => init.designFiles.find((f) => f.arg === a)?.name ?? a);
}

async function mergeFiles(io: Io, opts: CheckOptions): Promise<CheckReport> {
  if (opts.shard || opts.design || opts.backend || opts.cell || opts.host || opts.guest) {
    throw new KvmxError("--merge combines existing results; it takes no --shard, --design, --backend, --cell, --host or --guest", "usage");
  }
  const parts = [];
  for (const file of opts.merge ?? []) parts.push({ report: readReport((await io.readInput(file)).toString("utf8"), file), file });
  return mergeReports(parts);
}

export async function readWeightsFile(io: Io, file: string): Promise<CostWeights> {
  const text = await readText(io, file, "weights file");
  let data: unknown;
  try {
    data = parseYaml(text); // YAML is a superset of JSON
  } catch (err) {
    throw new InputError(`weights: ${err instanceof Error ? err.message : String(err)}`, { file }, { cause: err });
  }
  return parseWeights(data, file);
}

async function readText(io: Io, file: string, what: string): Promise<string> {
  try {
    return (await io.readInput(file)).toString("utf8");
  } catch (err) {
    throw new InputError(`cannot read ${what}: ${err instanceof Error ? err.message : String(err)}`, { file }, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------
// The provider: core's Machine over the CLI's backends, the built-in designs and any design files.

/** What a worker thread needs to build the same provider (structured-cloneable). */
export interface CheckProviderInit {
  /** Design files named on the command line: the argument, the file and its text, the design's name. */
  designFiles: { arg: string; file: string; text: string; name: string }[];
  /** Event kinds left out of the alphabet. */
  exclude?: CoreEventKind[];
  /** Model assumptions pinned to one alternative (ASSUMPTIONS in core's model-options.ts); never swept. */
  options?: Partial<ModelOptions>;
  /** Which valuations of the other assumptions every cell runs under (default "each"). */
  sweep?: "default" | "each" | "all";
  /** Separate findings from the designs' violations (default true). */
  findings?: boolean;
}

const SWEEP_MODES = ["default", "each", "all"] as const;
function sweepMode(text: string): (typeof SWEEP_MODES)[number] {
  if (!(SWEEP_MODES as readonly string[]).includes(text)) throw new KvmxError(`--sweep expects one of ${SWEEP_MODES.join(", ")}, got "${text}"`, "usage");
  return text as (typeof SWEEP_MODES)[number];
}

/** `--option name=value`: each must name an ASSUMPTIONS entry and one of its alternatives. */
export function modelOptions(pairs: readonly string[]): Partial<ModelOptions> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const [name = "", value = ""] = pair.split("=", 2);
    const spec = (ASSUMPTIONS as Record<string, { alternatives: readonly string[] }>)[name];
    if (!spec) throw new KvmxError(`--option: unknown assumption "${name}" (known: ${Object.keys(ASSUMPTIONS).join(", ")})`, "usage");
    if (!spec.alternatives.includes(value)) {
      throw new KvmxError(`--option ${name}: "${value}" is not one of ${spec.alternatives.join(", ")}`, "usage");
    }
    out[name] = value;
  }
  return out as Partial<ModelOptions>;
}

function eventKinds(names: readonly string[]): CoreEventKind[] {
  for (const n of names) {
    if (!(EVENT_KINDS as readonly string[]).includes(n)) throw new KvmxError(`--exclude: unknown event kind "${n}" (known: ${EVENT_KINDS.join(", ")})`, "usage");
  }
  return names as CoreEventKind[];
}

export function buildCheckProvider(init: CheckProviderInit): CheckProvider {
  const designs: Design[] = [...BUILTIN_DESIGNS];
  for (const f of init.designFiles) designs.push(parseDesignFile(f.text, f.file));
  return machineProvider({
    backends: BACKENDS,
    designs,
    ...(init.exclude?.length ? { alphabet: { exclude: init.exclude } } : {}),
    ...(init.options && Object.keys(init.options).length > 0 ? { options: init.options } : {}),
    sweep: init.sweep ?? "each",
    findings: init.findings ?? true,
  });
}

/**
 * `--design` arguments: a built-in name stays a name; anything else must be a readable design file
 * (YAML or JSON, validated by core: a bad file is exit 65 with file:line:column).
 */
export async function loadDesignFiles(io: Io, args: readonly string[]): Promise<CheckProviderInit["designFiles"]> {
  const out: CheckProviderInit["designFiles"] = [];
  for (const arg of args) {
    if (builtinDesign(arg)) continue;
    const looksLikeFile = /[./\\]/.test(arg);
    if (!looksLikeFile) {
      throw new InputError(`unknown design "${arg}": not a built-in (${BUILTIN_DESIGNS.map((d) => d.name).join(", ")}) and not a file path`);
    }
    const text = await readText(io, arg, "design file");
    const design = parseDesignFile(text, arg);
    if (builtinDesign(design.name) || out.some((f) => f.name === design.name)) {
      throw new InputError(`design name "${design.name}" is already taken (built-in or another file); rename it`, { file: arg });
    }
    out.push({ arg, file: arg, text, name: design.name });
  }
  return out;
}

/** --trace-out: a scenario file and a Chrome trace per counterexample; their paths go into the report. */
async function writeTraces(io: Io, report: CheckReport, dir: string): Promise<void> {
  const abs = resolve(io.cwd, dir);
  await mkdir(abs, { recursive: true });
  const write = async (ce: CounterexampleReport, base: string, title: string) => {
    ce.scenarioFile = join(dir, `${base}.scenario.yaml`);
    ce.chromeTraceFile = join(dir, `${base}.trace.json`);
    await writeFile(join(abs, `${base}.scenario.yaml`), ce.scenario);
    await writeFile(join(abs, `${base}.trace.json`), toJson(chromeTrace(ce, title)));
  };
  for (const cell of report.cells) {
    const where = `${cell.design} on ${cell.backend}, ${profileLabel(cell)}`;
    const ces = [cell.counterexample, ...(cell.otherCounterexamples ?? [])];
    for (const [k, ce] of ces.entries()) if (ce) await write(ce, `${cellId(cell)}${k === 0 ? "" : `.${ce.invariant}`}`, `${where}: ${ce.invariant}`);
    // Conditional cells: the counterexample under each valuation that breaks them.
    for (const [k, v] of (cell.assumptionVerdicts ?? []).entries()) {
      if (k === 0 || !v.counterexample || v.counterexample === cell.counterexample || v.counterexample.scenarioFile) continue;
      await write(v.counterexample, `${cellId(cell)}.valuation-${k}`, `${where} if ${Object.entries(v.assumptions).map(([a, x]) => `${a}=${x}`).join(" & ")}: ${v.counterexample.invariant}`);
    }
  }
  for (const f of report.findings) await write(f.counterexample, `finding-${f.id}`, `${f.id}: ${f.explanation?.title ?? f.message}`);
}

export function positiveInt(text: string, flag: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new KvmxError(`${flag} expects an integer ≥ ${min}, got "${text}"`, "usage");
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Human output

export interface HumanOptions {
  /** Print the cost table (default true). */
  cost?: boolean;
  /** --verbose: the lines that show the state after each event of a counterexample (one list per event). */
  states?: (ce: CounterexampleReport) => string[][];
}

export function renderHuman(report: CheckReport, colour: boolean, opts: HumanOptions = {}): string {
  const c = colour ? pc : pc.createColors(false);
  const out: string[] = [];
  const grid = verdictGrid(report);
  // One table per backend keeps each within a terminal's width (six profile columns each).
  for (const backend of report.backends) {
    const cols = grid.columns.map((col, i) => ({ ...col, i })).filter((col) => col.backend === backend);
    if (cols.length === 0) continue;
    const head = [c.bold(backend), ...cols.map((col) => profileTag(col.profile))];
    const rows = grid.rows.map((row) => [row.design, ...cols.map((col) => paint(c, row.cells[col.i]))]);
    out.push(renderTable({ head, rows }));
  }
  out.push(c.dim("H- host CPU without APX · H+ APX CPU, today's kernel · Hk APX CPU, -mapxf kernel · g+/g- guest CPUID with/without APX"));
  // Counterexamples; identical ones (same design, invariant, valuation and events) grouped across backends and profiles.
  // A conditional cell also shows the counterexample under the valuation that breaks it.
  const fmtValuation = (a: Record<string, string>) => Object.entries(a).map(([k, v]) => `${k}=${v}`).join(" & ");
  const groups = new Map<string, { cells: CellResult[]; ce: NonNullable<CellResult["counterexample"]>; under: string }>();
  const add = (cell: CellResult, ce: CellResult["counterexample"], under: string) => {
    if (!ce) return;
    const key = `${cell.design}|${under}|${ce.invariant}|${ce.site ?? ""}|${ce.message}|${JSON.stringify(ce.events)}`;
    const g = groups.get(key);
    if (g) g.cells.push(cell);
    else groups.set(key, { cells: [cell], ce, under });
  };
  for (const cell of report.cells) {
    for (const ce of [cell.counterexample, ...(cell.otherCounterexamples ?? [])]) add(cell, ce, "");
    for (const v of cell.assumptionVerdicts?.slice(1) ?? []) if (v.verdict === "violation" && cell.verdict !== "violation") add(cell, v.counterexample, fmtValuation(v.assumptions));
  }
  const where = (cells: readonly CellResult[]) =>
    [...new Set(cells.map((x) => x.backend))].map((b) => `${b} [${cells.filter((x) => x.backend === b).map((x) => profileTag(x)).join(", ")}]`).join(", ");
  const events = (ce: NonNullable<CellResult["counterexample"]>) => {
    const states = opts.states?.(ce);
    ce.events.forEach((e, i) => {
      const line = `  ${i + 1}. ${eventLabel(e)}`;
      out.push(i === ce.failingStep ? c.red(`${line}   ← breaks${ce.site ? ` at ${ce.site}` : ""}`) : line);
      for (const s of states?.[i] ?? []) out.push(c.dim(`       ${s}`));
    });
  };
  if (groups.size > 0) out.push("", c.bold("Counterexamples (shortest, minimised):"));
  for (const { cells, ce, under } of groups.values()) {
    out.push(
      "",
      `${c.bold(cells[0]!.design)} on ${where(cells)}${under ? ` if ${c.yellow(under)}` : ""}: ${c.red(ce.invariant)}${ce.alsoBroken ? ` (also ${ce.alsoBroken.join(", ")})` : ""} — ${ce.message}`,
    );
    events(ce);
    if (ce.scenarioFile) out.push(c.dim(`  replay: kvmx run ${ce.scenarioFile}`));
  }
  // Findings: violations of code every design of an EGPR home shares, once each.
  if (report.findings.length > 0) out.push("", c.bold("Findings (KVM code every design of an EGPR home shares; not counted against the designs):"));
  for (const f of report.findings) {
    const x = f.explanation;
    const designs = [...new Set(f.cells.map((id) => report.cells.find((cell) => cellId(cell) === id)?.design ?? id))];
    const when = findingValuationText(f, report);
    out.push("", `${c.bold(f.id)} ${x ? c.bold(x.title) : f.message} — ${f.observedAt.map((o) => c.red(o)).join(", ")}`);
    if (x) {
      out.push(`  KVM:          ${x.kvm} (${x.function})`, `  Architecture: ${x.architecture}`, `  Severity:     ${x.severity}`, `  Sources:      ${x.sources.join(", ")}`);
      if (x.doc) out.push(`  Write-up:     ${x.doc}`);
    } else out.push(`  ${f.message}`);
    out.push(`  Met by ${designs.join(", ")} (R16–R31 in ${f.egprHome ?? "?"}) in ${f.cells.length} cell${f.cells.length === 1 ? "" : "s"}, under ${when}:`);
    events(f.counterexample);
    if (f.counterexample.scenarioFile) out.push(c.dim(`  replay: kvmx run ${f.counterexample.scenarioFile}`));
  }
  const cost = opts.cost === false ? "" : renderCostTable(report, colour);
  if (cost) out.push("", c.bold(`Cost per round trip (host: APX CPU, ${COSTED_HOST.kernelApx ? "-mapxf" : "today's"} kernel):`), cost);
  const states = report.cells.reduce((n, x) => n + x.states, 0);
  const transitions = report.cells.reduce((n, x) => n + x.transitions, 0);
  const failed = report.cells.filter((x) => x.verdict === "violation").length;
  const bounded = report.cells.filter(cellBounded);
  const conditional = report.cells.filter((x) => x.condition).length;
  const scope = bounded.length === 0
    ? "complete (every reachable state explored)"
    : `bounded: ${bounded.length} cell${bounded.length === 1 ? "" : "s"} without a violation not explored to the fixpoint` +
      (report.depth !== undefined ? ` (--depth ${report.depth})` : "");
  const swept = report.sweep ? `assumptions swept (${report.sweep.mode}: ${report.sweep.assumptions.length}), ${conditional} verdict${conditional === 1 ? "" : "s"} conditional` : "default assumptions only";
  out.push(
    "",
    `${scope}: ${report.cells.length} cell${report.cells.length === 1 ? "" : "s"}, ${failed} with a violation, ${report.findings.length} finding${report.findings.length === 1 ? "" : "s"}; ${swept}; ${states.toLocaleString("en")} states, ` +
      `${transitions.toLocaleString("en")} transitions in ${(report.elapsedMs / 1000).toFixed(2)} s (${report.statesPerSecond.toLocaleString("en")} states/s)` +
      (report.shard ? `; shard ${report.shard.index}/${report.shard.count}` : ""),
  );
  return out.join("\n") + "\n";
}

function paint(c: ReturnType<typeof pc.createColors>, cell: CellResult | undefined): string {
  const text = verdictText(cell);
  if (!cell) return "";
  if (cell.verdict === "safe") return cell.condition ? c.yellow(text) : c.green(text);
  if (cell.verdict === "violation") return c.red(text);
  return c.dim(text);
}

/**
 * Progress on stderr: on a terminal a live line (ora) — never with --json; elsewhere (CI logs) one
 * plain line every 10 s once a run has taken that long, so a long search is never silent.
 */
function startProgress(io: Io, enabled: boolean): { update: (p: MatrixProgress) => void; stop: () => void } {
  // A pseudo-terminal without a size (columns 0) would make ora's line clearing loop forever.
  if (!io.stderrIsTty || !(process.stderr.columns > 0)) {
    let next = 10_000;
    return {
      update: (p) => {
        if (p.elapsedMs < next) return;
        next = p.elapsedMs + 10_000;
        io.err(`kvmx check: ${progressText(p)}\n`);
      },
      stop: () => {},
    };
  }
  if (!enabled) return { update: () => {}, stop: () => {} };
  // discardStdin off: ora would otherwise hold stdin open and keep the process alive.
  const spinner = ora({ stream: process.stderr, text: "checking…", discardStdin: false }).start();
  return {
    update: (p) => {
      spinner.text = progressText(p);
    },
    stop: () => spinner.stop(),
  };
}

function progressText(p: MatrixProgress): string {
  const rate = p.elapsedMs > 0 ? Math.round((p.states / p.elapsedMs) * 1000) : 0;
  const live = p.frontier > 0 ? `, depth ${p.depth}, frontier ${p.frontier.toLocaleString("en")}` : "";
  return `${p.cellsDone}/${p.cellsTotal} cells, ${p.states.toLocaleString("en")} states${live} (${rate.toLocaleString("en")} states/s, ${(p.elapsedMs / 1000).toFixed(0)} s)`;
}
