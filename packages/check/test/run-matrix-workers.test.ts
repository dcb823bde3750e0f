import { existsSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runMatrix } from "../src/matrix/run-matrix.js";

// Worker threads load plain JavaScript, so this test runs the built dist/ (CI builds before testing).
const pkg = fileURLToPath(new URL("..", import.meta.url));
const dist = join(pkg, "dist/index.js");
const newestSrc = (dir: string): number =>
  Math.max(...readdirSync(dir, { withFileTypes: true }).map((d) => (d.isDirectory() ? newestSrc(join(dir, d.name)) : statSync(join(dir, d.name)).mtimeMs)));
const reason = !existsSync(dist)
  ? "packages/check/dist is not built (pnpm build)"
  : statSync(dist).mtimeMs < newestSrc(join(pkg, "src"))
    ? "packages/check/dist is older than src (pnpm build)"
    : undefined;
if (reason) console.warn(`skipping the worker-thread test: ${reason}`);

describe.skipIf(reason !== undefined)("runMatrix with worker threads", () => {
  it("gives the same cells as the in-thread run, in canonical order", async () => {
    const url = new URL("./fixtures/toy-worker.mjs", import.meta.url);
    const { provider } = (await import(url.href)) as { provider: (init: unknown) => import("../src/matrix/provider.js").CheckProvider };
    const init = { bugX: 7 };
    const inThread = await runMatrix(provider(init), { depth: 12, workers: 0 });
    const progress: number[] = [];
    const threaded = await runMatrix(provider(init), { depth: 12, workers: 2, worker: { url, init }, onProgress: (p) => progress.push(p.cellsDone) });
    const timeless = (r: typeof inThread) => r.cells.map(({ elapsedMs: _e, ...c }) => c);
    expect(timeless(threaded)).toEqual(timeless(inThread));
    expect(threaded.cells.filter((c) => c.verdict === "violation").map((c) => c.counterexample!.events.length)).toContain(8);
    expect(Math.max(...progress)).toBe(threaded.cells.length);
    // Bounded: the 50-state ring is 25 events across, so depth 12 leaves every safe cell incomplete.
    expect(threaded.cells.filter((c) => c.verdict === "safe").every((c) => !c.complete && c.stoppedBy === "depth" && c.depthReached === 12)).toBe(true);
  });

  it("to the fixpoint, too: the same complete cells with their diameter from the workers", async () => {
    const url = new URL("./fixtures/toy-worker.mjs", import.meta.url);
    const { provider } = (await import(url.href)) as { provider: (init: unknown) => import("../src/matrix/provider.js").CheckProvider };
    const init = { bugX: 7 };
    const inThread = await runMatrix(provider(init), { workers: 0 });
    const threaded = await runMatrix(provider(init), { workers: 2, worker: { url, init } });
    const timeless = (r: typeof inThread) => r.cells.map(({ elapsedMs: _e, ...c }) => c);
    expect(timeless(threaded)).toEqual(timeless(inThread));
    expect(threaded.complete).toBe(true);
    const safe = threaded.cells.filter((c) => c.verdict === "safe");
    expect(safe.length).toBeGreaterThan(0);
    for (const c of safe) expect([c.complete, c.states, c.diameter, c.frontier]).toEqual([true, 50, 25, 0]);
  });
});
