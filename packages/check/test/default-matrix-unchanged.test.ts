/**
 * The model features and variants (issue 13) must not change the default `kvmx check` matrix: its
 * states carry the new slots as constants and its run plans have no new site. Cells of every kind
 * (safe at the fixpoint, violations of several invariants, every backend) against the counts recorded
 * before the features were added (fixtures/default-matrix-cells.json). The counts are those of the
 * model that offers every event: host-NMI folding (which the checker uses by default, and which
 * host-nmi-folding.test.ts holds to the same results) stores fewer states in -mapxf cells.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { machineProvider, runCell } from "@kvmx/check";
import { tdxBackend, vmxBackend, vmxNestedBackend } from "@kvmx/vmx";
import { sevEsBackend, svmBackend } from "@kvmx/svm";

type Row = [string, string, boolean, boolean, boolean, string, number, number, boolean, string | null, number | null];
const fixture = JSON.parse(readFileSync(new URL("./fixtures/default-matrix-cells.json", import.meta.url), "utf8")) as { cells: Row[] };
const provider = machineProvider({ backends: [vmxBackend, vmxNestedBackend, tdxBackend, svmBackend, sevEsBackend], foldHostNmis: false });

describe("the default matrix is unchanged by the model features", () => {
  for (const [design, backend, cpuApx, kernelApx, guestApx, verdict, states, transitions, complete, invariant, length] of fixture.cells) {
    it(`${design} on ${backend}, host apx ${cpuApx}${kernelApx ? " -mapxf" : ""}, guest apx ${guestApx}`, () => {
      const r = runCell(provider, { design, backend, host: { cpuApx, kernelApx }, guest: { apx: guestApx } }, { cost: false });
      expect([r.verdict, r.states, r.transitions, r.complete, r.invariant ?? null, r.counterexample?.events.length ?? null]).toEqual([
        verdict, states, transitions, complete, invariant, length,
      ]);
    });
  }
});
