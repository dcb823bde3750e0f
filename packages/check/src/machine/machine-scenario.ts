import { DEFAULT_MODEL_OPTIONS as DEFAULTS, scenarioToYaml, INVARIANTS, type InvariantName, type KvmxEvent, type Machine } from "@kvmx/core";
import type { CellSpec } from "../matrix/cell.js";
import { cellId } from "../matrix/cell.js";

/**
 * The scenario file of a counterexample (core's scenario writer): backend, design (by name when
 * built in, inline otherwise), host and guest profiles, the model options in force, the events, and
 * the violation `kvmx run` must reproduce.
 */
export function machineScenario(cell: CellSpec, m: Machine, events: readonly KvmxEvent[], violations: readonly InvariantName[], variant = 0): string {
  const cfg = m.config;
  return scenarioToYaml(
    {
      name: [cellId(cell), ...violations.slice(0, 1)].join("."),
      description: `kvmx check counterexample: ${violations.map((v) => INVARIANTS[v]).join("; ")}`,
      backend: cell.backend,
      design: cfg.design,
      host: { cpu: cfg.hostCpu.name, kernelApx: cell.host.kernelApx },
      guest: { apx: cell.guest.apx },
      ...(cfg.pre ? { pre: true } : {}),
      options: nonDefaultOptions(m, variant),
      events,
      expect: { violations },
    },
    `Found by kvmx check; replay with: kvmx run <this file>`,
  );
}

function nonDefaultOptions(m: Machine, variant: number): Record<string, string> {
  // Only options that differ from the defaults, so the file stays short and still exact.
  const opts = m.config.assumptions.valuations[variant] ?? m.config.assumptions.valuations[0]!;
  return Object.fromEntries(Object.entries(opts).filter(([k, v]) => (DEFAULTS as Record<string, string>)[k] !== v));
}
