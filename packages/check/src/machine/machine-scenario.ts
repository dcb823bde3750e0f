import type { InvariantName, KvmxEvent, Machine } from "@kvmx/core";
import type { CellSpec } from "../matrix/cell.js";

/** The scenario file of a counterexample: backend, design, profiles, events, and the expected violation. */
export function machineScenario(cell: CellSpec, m: Machine, events: readonly KvmxEvent[], invariant: InvariantName): string {
  const doc = {
    backend: cell.backend,
    design: cell.design,
    host: { cpu: m.config.hostCpu.name, kernelApx: cell.host.kernelApx },
    guest: { apx: cell.guest.apx },
    events,
    expect: { violation: invariant },
  };
  return JSON.stringify(doc, null, 2) + "\n";
}
