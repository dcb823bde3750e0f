import { KvmxError } from "@kvmx/core";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import type { CheckProvider } from "./provider.js";
import { runCell } from "./run-cell.js";
import { WORKER_KIND, type FromWorker, type ToWorker } from "./run-matrix.js";

/** True in a worker thread started by runMatrix (the module that calls serveCheckWorker checks this first). */
export function isCheckWorker(): boolean {
  return !isMainThread && (workerData as { kind?: unknown } | null)?.kind === WORKER_KIND;
}

/**
 * The worker side of runMatrix: builds a provider from the init data runMatrix passed, then checks
 * the cells it is sent, one at a time, until told to stop. Errors travel back typed.
 */
export function serveCheckWorker(makeProvider: (init: unknown) => CheckProvider): void {
  const port = parentPort;
  if (!port || !isCheckWorker()) return;
  const provider = makeProvider((workerData as { init: unknown }).init);
  port.on("message", (m: ToWorker) => {
    if (m.type === "stop") {
      port.close();
      return;
    }
    try {
      let last = 0;
      const result = runCell(provider, m.cell, {
        ...m.opts,
        onProgress: (p) => {
          const now = performance.now();
          if (now - last < 100) return;
          last = now;
          port.postMessage({ type: "progress", index: m.index, states: p.states, transitions: p.transitions, depth: p.depth, frontier: p.frontier } satisfies FromWorker);
        },
      });
      port.postMessage({ type: "result", index: m.index, result } satisfies FromWorker);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({
        type: "error",
        index: m.index,
        name: e.name,
        message: e.message,
        category: err instanceof KvmxError ? err.category : "internal",
      } satisfies FromWorker);
    }
  });
}
