/**
 * Every entry of corpus/ (issue 13): the pre-fix variant breaks the entry's invariant with a short,
 * minimised counterexample whose scenario file replays it, and the post-fix variant is safe with a
 * complete search. Also: an entry whose post-fix variant is the pre-fix one fails as it should.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadCorpus, parseCorpusEntry, runCorpusEntry, type CorpusEntry } from "@kvmx/check";
import { ScenarioError, type VendorOps } from "@kvmx/core";
import { tdxBackend, vmxBackend, vmxNestedBackend } from "@kvmx/vmx";
import { sevEsBackend, svmBackend } from "@kvmx/svm";

const BACKENDS: readonly VendorOps[] = [vmxBackend, vmxNestedBackend, tdxBackend, svmBackend, sevEsBackend];
const backend = (name: string): VendorOps | undefined => BACKENDS.find((b) => b.name === name);
const dir = fileURLToPath(new URL("../../../corpus", import.meta.url));
const entries = loadCorpus(dir, { backend });

describe("the known-bug corpus", () => {
  it("has the fixes issue 13 starts from", () => {
    expect(entries.map((e) => e.commit).sort()).toEqual(
      ["03a6e84069d1", "1811d979c716", "37486135d3a7", "42bdf991f4ca", "7117003fe4e3", "b45f72177594", "b45f72177594", "c2fee09fc167", "fc5b7f3bf1e1"],
    );
  });
  for (const entry of entries) {
    it(`${entry.id}: ${entry.commit} found before the fix, safe (complete) after it`, () => {
      const r = runCorpusEntry(entry, { backend });
      expect(r.problems).toEqual([]);
      expect(r.preFix.invariant).toBe(entry.expect.invariant);
      expect(r.preFix.events.length).toBeGreaterThan(0);
      expect(r.preFix.events.length).toBeLessThanOrEqual(entry.expect.maxLength);
      expect(r.preFix.replayed).toBe(true);
      expect(r.preFix.scenario).toContain("variant:");
      expect(r.postFix).toMatchObject({ verdict: "safe", complete: true });
    });
  }
  it("a post-fix variant that is still the buggy code is reported, not passed", () => {
    const e = entries.find((x) => x.id === "pkru-cr4-pke")!;
    const wrong: CorpusEntry = { ...e, postFix: e.preFix };
    const r = runCorpusEntry(wrong, { backend });
    expect(r.ok).toBe(false);
    expect(r.problems.join("\n")).toMatch(/^post-fix: host-xstate broken/m);
  });
  it("an entry's errors, and its variants' errors, are reported at file:line:column", () => {
    const text = readFileSync(join(dir, "pkru-cr4-pke", "entry.yaml"), "utf8");
    const at = (t: string, token: string) => {
      const lines = t.slice(0, t.indexOf(token)).split("\n");
      return `${lines.length}:${lines[lines.length - 1]!.length + 1}`;
    };
    const errorOf = (t: string, files: Record<string, string> = {}): string => {
      const readFile = (p: string) => files[p] ?? readFileSync(p, "utf8");
      try {
        parseCorpusEntry(t, "/c/e/entry.yaml", join(dir, "pkru-cr4-pke"), "e", { backend, readFile });
      } catch (e) {
        expect(e).toBeInstanceOf(ScenarioError);
        return (e as Error).message;
      }
      throw new Error("expected a ScenarioError");
    };
    const bad1 = text.replace("invariant: host-xstate\nbug", "invariant: host-xstat\nbug");
    expect(errorOf(bad1)).toMatch(new RegExp(`^/c/e/entry\\.yaml:${at(bad1, "host-xstat\n")}: `));
    const bad2 = text.replace('cr4: ["0x440620"', 'cr5: ["0x440620"');
    expect(errorOf(bad2)).toMatch(new RegExp(`^/c/e/entry\\.yaml:${at(bad2, "cr5")}: unknown key "cr5"`));
    const pre = join(dir, "pkru-cr4-pke", "pre-fix.yaml");
    const badPre = readFileSync(pre, "utf8").replace("on: guest-cr4-pke\n", "on: guest-cr4-pk\n");
    expect(errorOf(text, { [pre]: badPre })).toMatch(new RegExp(`^${pre.replace(/[.\\/]/g, "\\$&")}:${at(badPre, "guest-cr4-pk\n")}: `));
  });
});
