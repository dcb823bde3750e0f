import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_WEIGHTS } from "@kvmx/check";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

type Row = { design: string; backend: string; guestApx: boolean; kind: string; counters?: Record<string, number>; cycles?: number };

async function run(args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe("kvmx cost", () => {
  it("prints the cost table of every design", async () => {
    const r = await run(["cost", "--backend", "vmx"]);
    expect(r.code).toBe(0);
    for (const d of ["asm-conditional", "asm-unconditional", "early-xcr0", "c-xfeatures"]) expect(r.out).toContain(d);
    expect(r.out).toContain("XSETBV");
    expect(r.out).toContain("fastpath");
  });

  it("JSON rows come from the model: what each design moves per round trip", async () => {
    const r = await run(["cost", "--backend", "vmx", "--design", "c-xfeatures", "asm-conditional", "asm-unconditional", "--json"]);
    const { schemaVersion, rows } = JSON.parse(r.out) as { schemaVersion: number; rows: Row[] };
    expect(schemaVersion).toBe(1);
    const row = (d: string, apx: boolean, kind: string) => rows.find((x) => x.design === d && x.guestApx === apx && x.kind === kind)!.counters!;
    // asm-conditional: 16 loads, 16 stores and 16 clears per entry/exit with a guest using APX, nothing without.
    expect(row("asm-conditional", true, "full-exit")).toMatchObject({ egprLoads: 16, egprStores: 16, egprClears: 16 });
    expect(row("asm-conditional", false, "full-exit")).toMatchObject({ egprLoads: 0, egprStores: 0 });
    // It pays on fastpath re-entries too; the C design switches outside the fastpath loop.
    expect(row("asm-conditional", true, "fastpath").egprLoads).toBe(16);
    expect(row("c-xfeatures", true, "fastpath").egprLoads).toBe(0);
    expect(row("c-xfeatures", true, "full-exit").egprLoads).toBe(16);
    // asm-unconditional moves them with PUSH2/POP2.
    expect(row("asm-unconditional", true, "full-exit").push2pop2).toBeGreaterThan(0);
    // A guest without APX on an APX host runs with XCR0 != host XCR0: kvm_load_xfeatures XSETBVs twice.
    expect(row("asm-conditional", false, "full-exit").xsetbv).toBe(2);
  });

  it("--weights overrides the cycle table; a bad weights file exits 65", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kvmx-cost-"));
    try {
      const w = join(dir, "w.yaml");
      writeFileSync(w, "weights:\n  xsetbv: 1000\n");
      const base = JSON.parse((await run(["cost", "--backend", "vmx", "--design", "asm-conditional", "--json"])).out) as { rows: Row[] };
      const heavy = JSON.parse((await run(["cost", "--backend", "vmx", "--design", "asm-conditional", "--json", "--weights", w])).out) as { rows: Row[] };
      const c = (x: { rows: Row[] }) => x.rows.find((r) => !r.guestApx && r.kind === "full-exit")!.cycles!;
      expect(c(heavy) - c(base)).toBe(2 * (1000 - DEFAULT_WEIGHTS.xsetbv.cycles));
      writeFileSync(w, "weights:\n  xsetbv: lots\n");
      const bad = await run(["cost", "--weights", w]);
      expect(bad.code).toBe(65);
      expect(bad.err).toContain("w.yaml");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
