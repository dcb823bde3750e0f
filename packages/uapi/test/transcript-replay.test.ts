import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { VendorOps } from "@kvmx/core";
import { svmBackend } from "@kvmx/svm";
import { vmxBackend } from "@kvmx/vmx";
import { describe, expect, it } from "vitest";
import type { DiffReport } from "../src/diff/compare.js";
import { QUIRKS_BY_HOST_KIND } from "../src/diff/host-quirks.js";
import { hostModel } from "../src/diff/host-model.js";
import { PENDING_MODEL_BUGS, pendingBugsFor } from "../src/diff/pending-model-bugs.js";
import { parseTranscript, recordedScenario, replayScenario, sha256, type Transcript } from "../src/diff/transcript.js";
import type { HostKind } from "../src/host/host-description.js";
import { ModelKvm } from "../src/model/model-kvm.js";

/**
 * Model = real KVM on every machine: the transcripts recorded in `kvmx lab` (scenarios/real/
 * transcripts, one per kernel and CPU model) replayed against the model, configured from what each
 * kernel reported. Every difference must be a named quirk of the host kind or a known model bug
 * awaiting its fix in core; each such bug must still show (so its entry goes with the fix); and the
 * transcripts must be recorded from the scenario files as they are now.
 */
const REAL = fileURLToPath(new URL("../../../scenarios/real/", import.meta.url));
const DIR = `${REAL}transcripts/`;
const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();
const transcripts: [string, Transcript][] = files.map((f) => [f, parseTranscript(readFileSync(DIR + f, "utf8"), f)]);
const backendFor = (k: HostKind): VendorOps => (k === "kvm_amd" || k === "kvm_amd on an emulated CPU" ? svmBackend : vmxBackend);
const reports: DiffReport[] = [];

function replay(t: Transcript, i: number): DiffReport {
  const r = t.scenarios[i]!;
  const hm = hostModel(recordedScenario(r), t.host, t.facts, backendFor(t.host.hostKind));
  const report = replayScenario(r, { name: "model", kvm: new ModelKvm(hm.config) }, t.host.kernel, hm.profile, QUIRKS_BY_HOST_KIND[t.host.hostKind], pendingBugsFor(t.host, t.facts));
  reports.push(report);
  return report;
}

const where = (d: DiffReport["differences"][number]) => `${d.at.file}:${d.at.line} ${d.key}: model ${d.left}, kernel ${d.right}`;

describe("transcripts", () => {
  it("there is one for kernels 6.1 and 6.12 at least", () => {
    const kernels = transcripts.map(([, t]) => t.host.kernel);
    expect(kernels.some((k) => k.startsWith("6.1.0-"))).toBe(true);
    expect(kernels.some((k) => k.startsWith("6.12."))).toBe(true);
  });

  const current = readdirSync(REAL).filter((f) => f.endsWith(".yaml")).sort();
  for (const [f, t] of transcripts) {
    it(`${f}: recorded from every scenarios/real file as it is now (else re-record: kvmx diff --lab --kernel … --cpu ${t.host.qemuCpu ?? "…"} --record scenarios/real/transcripts/${f} scenarios/real/*.yaml)`, () => {
      expect(t.scenarios.map((s) => s.file.replace(/^.*\//, "")).sort()).toEqual(current);
      for (const s of t.scenarios) expect(sha256(readFileSync(REAL + s.file.replace(/^.*\//, ""), "utf8")), s.file).toBe(s.sha256);
    });
  }
});

for (const [f, t] of transcripts) {
  describe(`${f}: model vs linux ${t.host.kernel} (${t.host.hostKind}, ${t.host.cpuModel})`, () => {
    t.scenarios.forEach((s, i) => {
      it(`${s.name}: every difference is a named host quirk or a known pending model bug`, () => {
        const r = replay(t, i);
        expect(r.differences.filter((d) => !d.quirk && !d.pendingBug).map(where)).toEqual([]);
      });
    });
  });
}

// (none pending now; the block comes back with the next entry in PENDING_MODEL_BUGS)
describe.runIf(PENDING_MODEL_BUGS.length > 0)("KNOWN MODEL BUGS, fix pending in packages/core/src/kvm (the lab shows them; remove the entry when the fix lands)", () => {
  for (const b of PENDING_MODEL_BUGS) {
    it(`${b.name}: still observed against a real kernel — ${b.kernelFunction}; fix in ${b.fixIn}`, () => {
      if (reports.length === 0) transcripts.forEach(([, t]) => t.scenarios.forEach((_, i) => replay(t, i)));
      expect(reports.flatMap((r) => r.differences).filter((d) => d.pendingBug === b.name).length).toBeGreaterThan(0);
    });
  }
});
