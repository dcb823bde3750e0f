/**
 * Every entry of corpus/ (issue 13): the pre-fix variant breaks the entry's invariant with a short,
 * minimised counterexample whose scenario file replays it, and the post-fix variant is safe with a
 * complete search. Also: an entry whose post-fix variant is the pre-fix one fails as it should.
 */
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadCorpus, runCorpusEntry, type CorpusEntry } from "@kvmx/check";
import type { VendorOps } from "@kvmx/core";
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
});
