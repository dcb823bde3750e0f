import { describe, expect, it } from "vitest";
import { ASSUMPTIONS } from "@kvmx/core";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

async function run(args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe("kvmx assumptions", () => {
  it("lists every assumption with its alternatives, their sources, the default and whether check sweeps it", async () => {
    const r = await run(["assumptions"]);
    expect(r.code).toBe(0);
    for (const a of Object.values(ASSUMPTIONS)) {
      expect(r.out).toContain(a.name);
      for (const alt of a.alternatives) expect(r.out).toContain(`${alt}: ${(a.sources as Record<string, string>)[alt]}`);
    }
    expect(r.out).toMatch(/egprInitValue — uncertain, swept by kvmx check/);
    expect(r.out).toMatch(/\* kept: /);
    // Config-scope assumptions are fixed by the CPU profile, single-alternative ones have nothing to sweep.
    expect(r.out).toMatch(/apxCompactedAlign64 — uncertain, fixed per CPU profile \(not swept\)/);
    expect(r.out).toMatch(/push2pop2Rules — secondary, one alternative \(not swept\)/);
  });

  it("--json: schemaVersion 1, one entry per assumption, the swept ones flagged", async () => {
    const r = await run(["assumptions", "--json"]);
    const j = JSON.parse(r.out) as { schemaVersion: number; assumptions: { name: string; swept: boolean; default: string; alternatives: { value: string; default: boolean; source: string }[] }[] };
    expect(j.schemaVersion).toBe(1);
    expect(j.assumptions.map((a) => a.name)).toEqual(Object.values(ASSUMPTIONS).map((a) => a.name));
    const init = j.assumptions.find((a) => a.name === "egprInitValue")!;
    expect(init.swept).toBe(true);
    expect(init.alternatives.filter((x) => x.default).map((x) => x.value)).toEqual([init.default]);
    expect(j.assumptions.find((a) => a.name === "push2pop2Rules")!.swept).toBe(false);
  });
});
