import { KvmxError, ModelBugError, type ErrorCategory } from "@kvmx/core";
import { Worker } from "node:worker_threads";
import { SCHEMA_VERSION, cellBounded, type CellResult, type CheckReport } from "../report/check-report.js";
import { cellId, enumerateCells, type CellSpec } from "./cell.js";
import { guestKind, hostKind, type GuestKind, type HostKind } from "./profiles.js";
import type { CheckProvider } from "./provider.js";
import { runCell, type CellOptions } from "./run-cell.js";
import type { ExploreProgress } from "../engine/explore.js";
import { collectFindings } from "../report/findings.js";
import { selectShard, type Shard } from "./shard.js";

export interface MatrixOptions extends Omit<CellOptions, "onProgress"> {
  /** Only these designs / backends (default: all the provider has), in the provider's order. */
  designs?: readonly string[];
  backends?: readonly string[];
  /** Only these host / guest starts (default: every one); cells of the others are not explored at all. */
  hosts?: readonly HostKind[];
  guests?: readonly GuestKind[];
  /** Only the cells with these ids (cellId), intersected with the other filters. */
  cells?: readonly string[];
  shard?: Shard;
  /**
   * 0 or 1: explore in this thread (what tests do: a worker cannot load TypeScript sources).
   * N ≥ 2: N worker threads, each loading `worker.url` and building its own provider from `worker.init`.
   */
  workers?: number;
  worker?: WorkerSpec;
  onProgress?: (p: MatrixProgress) => void;
}

/** A module that, loaded in a worker thread, calls serveCheckWorker (see check-worker.ts). */
export interface WorkerSpec {
  url: URL;
  /** Structured-cloneable data from which the worker builds the same provider (e.g. design files). */
  init: unknown;
}

export interface MatrixProgress {
  cellsDone: number;
  cellsTotal: number;
  states: number;
  transitions: number;
  elapsedMs: number;
  /** Deepest level the cells being explored have reached. */
  depth: number;
  /** States waiting to be explored in the cells being explored. */
  frontier: number;
}

/** Messages between runMatrix and a check worker. */
export type ToWorker = { type: "cell"; index: number; cell: CellSpec; opts: CellOptions } | { type: "stop" };
export type FromWorker =
  | { type: "result"; index: number; result: CellResult }
  | { type: "progress"; index: number; states: number; transitions: number; depth: number; frontier: number }
  | { type: "error"; index: number; name: string; message: string; category: ErrorCategory };

export const WORKER_KIND = "kvmx-check-worker";


/** Checks every requested cell of the matrix (or one shard of it) and assembles the report. */
export async function runMatrix(provider: CheckProvider, opts: MatrixOptions): Promise<CheckReport> {
  const t0 = performance.now();
  const { designs, backends, cells } = selectCells(provider, opts);
  const { designs: _d, backends: _b, hosts: _h, guests: _g, cells: _c, shard: _s, workers: _w, worker: _ws, onProgress: _p, ...cellOpts } = opts;
  const workers = opts.workers ?? 0;
  const results =
    workers >= 2 && opts.worker && cells.length > 1
      ? await runInWorkers(cells, cellOpts, Math.min(workers, cells.length), opts.worker, opts.onProgress, t0)
      : runInThread(provider, cells, cellOpts, opts.onProgress, t0);
  const elapsedMs = performance.now() - t0;
  const states = results.reduce((n, c) => n + c.states, 0);
  const findings = collectFindings(results, (d) => provider.egprHome?.(d));
  const report: CheckReport = {
    schemaVersion: SCHEMA_VERSION,
    ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
    complete: results.every((c) => !cellBounded(c)),
    findings,
    ...(provider.sweep ? { sweep: provider.sweep } : {}),
    designs: [...designs],
    backends: [...backends],
    cells: results,
    elapsedMs,
    statesPerSecond: elapsedMs > 0 ? Math.round((states / elapsedMs) * 1000) : 0,
  };
  if (opts.shard) report.shard = { ...opts.shard };
  return report;
}

export type CellSelection = Pick<MatrixOptions, "designs" | "backends" | "hosts" | "guests" | "cells" | "shard">;

/**
 * The cells runMatrix checks for these options, in canonical order (the shard is taken last, so
 * `--shard` slices what the other filters leave). Unknown designs or backends are a usage error;
 * cell ids are matched as given (see unknownCellIds).
 */
export function selectCells(provider: CheckProvider, opts: CellSelection): { designs: string[]; backends: string[]; cells: CellSpec[] } {
  const designs = pick(provider.designs, opts.designs, "design");
  const backends = pick(provider.backends, opts.backends, "backend");
  const ids = opts.cells && opts.cells.length > 0 ? new Set(opts.cells) : undefined;
  const all = enumerateCells(designs, backends).filter(
    (c) =>
      (!opts.hosts?.length || opts.hosts.includes(hostKind(c.host))) &&
      (!opts.guests?.length || opts.guests.includes(guestKind(c.guest))) &&
      (!ids || ids.has(cellId(c))),
  );
  return { designs, backends, cells: selectShard(all, opts.shard) };
}

/** The ids among `ids` that name no cell of the provider's whole matrix (every design and backend). */
export function unknownCellIds(provider: CheckProvider, ids: readonly string[]): string[] {
  const known = new Set(enumerateCells(provider.designs, provider.backends).map(cellId));
  return ids.filter((id) => !known.has(id));
}

function pick(all: readonly string[], wanted: readonly string[] | undefined, what: string): string[] {
  if (!wanted || wanted.length === 0) return [...all];
  for (const w of wanted) {
    if (!all.includes(w)) throw new KvmxError(`unknown ${what} "${w}" (known: ${all.join(", ")})`, "usage");
  }
  return all.filter((x) => wanted.includes(x));
}

function runInThread(
  provider: CheckProvider,
  cells: readonly CellSpec[],
  opts: CellOptions,
  onProgress: MatrixOptions["onProgress"],
  t0: number,
): CellResult[] {
  const out: CellResult[] = [];
  let states = 0;
  let transitions = 0;
  for (const cell of cells) {
    const r = runCell(provider, cell, {
      ...opts,
      ...(onProgress
        ? {
            onProgress: (p: ExploreProgress) =>
              onProgress({ cellsDone: out.length, cellsTotal: cells.length, states: states + p.states, transitions: transitions + p.transitions, elapsedMs: performance.now() - t0, depth: p.depth, frontier: p.frontier }),
          }
        : {}),
    });
    out.push(r);
    states += r.states;
    transitions += r.transitions;
    onProgress?.({ cellsDone: out.length, cellsTotal: cells.length, states, transitions, elapsedMs: performance.now() - t0, depth: 0, frontier: 0 });
  }
  return out;
}

/**
 * Hands cells to `n` workers one at a time (a work queue: cells differ wildly in cost), and puts
 * the results back in canonical order, so the report does not depend on scheduling.
 */
function runInWorkers(
  cells: readonly CellSpec[],
  opts: CellOptions,
  n: number,
  spec: WorkerSpec,
  onProgress: MatrixOptions["onProgress"],
  t0: number,
): Promise<CellResult[]> {
  return new Promise((resolve, reject) => {
    const results: (CellResult | undefined)[] = new Array(cells.length);
    const live = new Map<number, { states: number; transitions: number; depth: number; frontier: number }>();
    let nextCell = 0;
    let done = 0;
    let doneStates = 0;
    let doneTransitions = 0;
    let failed = false;
    const pool: Worker[] = [];
    const report = () => {
      let states = doneStates;
      let transitions = doneTransitions;
      let depth = 0;
      let frontier = 0;
      for (const l of live.values()) {
        states += l.states;
        transitions += l.transitions;
        depth = Math.max(depth, l.depth);
        frontier += l.frontier;
      }
      onProgress?.({ cellsDone: done, cellsTotal: cells.length, states, transitions, elapsedMs: performance.now() - t0, depth, frontier });
    };
    const stopAll = () => {
      for (const w of pool) void w.terminate();
    };
    const feed = (w: Worker) => {
      if (nextCell >= cells.length) {
        w.postMessage({ type: "stop" } satisfies ToWorker);
        return;
      }
      const index = nextCell++;
      w.postMessage({ type: "cell", index, cell: cells[index] as CellSpec, opts } satisfies ToWorker);
    };
    for (let i = 0; i < n; i++) {
      // Node flags that only make sense for the main entry (--input-type for `node -e`) break a worker.
      const execArgv = process.execArgv.filter((a) => !a.startsWith("--input-type"));
      const w = new Worker(spec.url, { workerData: { kind: WORKER_KIND, init: spec.init }, execArgv });
      pool.push(w);
      w.on("message", (m: FromWorker) => {
        if (failed) return;
        if (m.type === "progress") {
          live.set(m.index, { states: m.states, transitions: m.transitions, depth: m.depth, frontier: m.frontier });
          report();
        } else if (m.type === "result") {
          results[m.index] = m.result;
          live.delete(m.index);
          done++;
          doneStates += m.result.states;
          doneTransitions += m.result.transitions;
          report();
          if (done === cells.length) {
            stopAll();
            resolve(results as CellResult[]);
          } else feed(w);
        } else {
          failed = true;
          stopAll();
          reject(m.category === "internal" ? new ModelBugError(`worker: ${m.name}: ${m.message}`) : new KvmxError(m.message, m.category));
        }
      });
      w.on("error", (err) => {
        if (failed) return;
        failed = true;
        stopAll();
        reject(new ModelBugError(`check worker crashed: ${err instanceof Error ? err.message : String(err)}`));
      });
      feed(w);
    }
  });
}
