import { afterAll, bench, describe } from "vitest";
import { createMachine, roundTripsPerSecond, type KvmxEvent, type Machine, type MachineState, type VendorOps } from "@kvmx/core";
import { sevEsBackend, svmApxBackend, svmBackend } from "../src/index.js";

/**
 * Speed goal: simulated VM-exit round trips per second, per backend (svm, svm-apx hypothetical,
 * sev-es), for an in-kernel exit (CPUID; on SEV-ES a VMGEXIT through the GHCB), a userspace exit (OUT)
 * and the HLT fastpath. One event applied to the same prepared state each call (apply clones it), as
 * the checker does. Design asm-conditional; zen host for svm/sev-es, dmr for the APX what-if.
 */
const EXITS: Record<string, KvmxEvent> = {
  cpuid: { kind: "guest-cpuid" },
  "io (userspace)": { kind: "guest-io" },
  "hlt (fastpath)": { kind: "guest-hlt" },
};

const setups: { backend: VendorOps; cpu: string; apx: boolean }[] = [
  { backend: svmBackend, cpu: "zen", apx: false },
  { backend: svmApxBackend, cpu: "dmr", apx: true },
  { backend: sevEsBackend, cpu: "zen", apx: false },
];
const prepared = setups.map(({ backend, cpu, apx }) => {
  const m: Machine = createMachine({ backend, design: "asm-conditional", host: { cpu, kernelApx: false }, guest: { apx } });
  const s: MachineState = m.apply(m.initialState(), { kind: "guest-xsetbv", value: apx ? "0x800e7" : "0x7" }).state;
  return { name: backend.name, m, s };
});

let sink = 0;
for (const [exit, ev] of Object.entries(EXITS)) {
  describe(`round trip: ${exit}`, () => {
    for (const p of prepared) bench(p.name, () => void (sink ^= p.m.apply(p.s, ev).violations.length));
  });
}

afterAll(() => {
  const lines = ["", "Simulated round trips per second per backend (median of 5; docs/facts.md#real-exit-rates: real in-kernel CPUID exits here ≈ 0.87M/s)"];
  lines.push(`${"backend".padEnd(12)}${Object.keys(EXITS).map((k) => k.padStart(18)).join("")}`);
  for (const p of prepared) {
    const rates = Object.values(EXITS).map((ev) => roundTripsPerSecond(p.m, p.s, ev));
    lines.push(`${p.name.padEnd(12)}${rates.map((r) => `${Math.round(r).toLocaleString("en-US")}/s`.padStart(18)).join("")}`);
  }
  console.log(lines.join("\n") + `\n(sink ${sink & 1})`);
});
