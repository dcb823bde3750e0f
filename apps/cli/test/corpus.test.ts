import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

describe("kvmx corpus", () => {
  test("every entry holds: found before its fix, safe (complete) after it; exit 0", async () => {
    const io = captureIo();
    expect(await main(["corpus"], io)).toBe(0);
    const out = io.stdout();
    expect(out).toMatch(/^kvmx corpus: 9 known KVM bugs/);
    expect(out).toMatch(/^pkru-cr4-pke\s+37486135d3a7\s+v5\.7\s+host-xstate\s+host-xstate in 2: guest-xsetbv 0x203; /m);
    expect(out).toMatch(/^dr6-fastpath\s+c2fee09fc167\s+v6\.14\s+guest-state\s+guest-state in 1: guest-dr6 0xffff0ff1 fastpath=true\s+safe, \d+ states$/m);
    expect(out).toContain("all 9 hold");
  });

  test("--json with --entry; --trace-out writes a scenario that kvmx run replays (exit 1: it expects the violation)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kvmx-corpus-"));
    const io = captureIo();
    expect(await main(["corpus", "--json", "--entry", "xfd-set-xsave", "--trace-out", dir], io)).toBe(0);
    const j = JSON.parse(io.stdout());
    expect(j.schemaVersion).toBe(1);
    expect(j.entries).toHaveLength(1);
    expect(j.entries[0]).toMatchObject({ id: "xfd-set-xsave", commit: "b45f72177594", ok: true, postFix: { verdict: "safe", complete: true } });
    expect(j.entries[0].preFix.events.map((e: { kind: string }) => e.kind)).toEqual(["guest-wrmsr-xfd", "set-xsave", "guest-io"]);
    const file = join(dir, "xfd-set-xsave.pre-fix.yaml");
    expect(readFileSync(file, "utf8")).toContain("variant:");
    const run = captureIo();
    expect(await main(["run", file], run)).toBe(0);
    expect(run.stdout()).toMatch(/host-xstate — host #NM on `xrstor \[rcx\]`/);
  });

  test("an entry whose post-fix variant still has the bug exits 1 and says why; a bad entry file exits 65 at its line", async () => {
    const root = mkdtempSync(join(tmpdir(), "kvmx-corpus-"));
    cpSync(fileURLToPath(new URL("../../../corpus/pkru-cr4-pke", import.meta.url)), join(root, "pkru-cr4-pke"), { recursive: true });
    const entry = join(root, "pkru-cr4-pke", "entry.yaml");
    writeFileSync(entry, readFileSync(entry, "utf8").replace("postFix: post-fix.yaml", "postFix: pre-fix.yaml"));
    const io = captureIo();
    expect(await main(["corpus", "--dir", root], io)).toBe(1);
    expect(io.stdout()).toMatch(/^pkru-cr4-pke: post-fix: host-xstate broken/m);
    mkdirSync(join(root, "bad"));
    writeFileSync(join(root, "bad", "entry.yaml"), "title: t\ncommit: 0123456789ab\nkernel: v1\ninvariant: no-such\n");
    const bad = captureIo();
    expect(await main(["corpus", "--dir", root], bad)).toBe(65);
    expect(bad.stderr()).toMatch(/bad\/entry\.yaml:4:12: unknown invariant "no-such"/);
  });
});
