import type { CpuProfile } from "@kvmx/core";
import type { Kvm } from "../api.js";
import { compareObservations, type DiffReport } from "./compare.js";
import { HOST_QUIRKS, type HostQuirk, type PendingModelBug } from "./host-quirks.js";
import { observeScenario } from "./observe.js";
import type { RealScenario } from "./real-scenario.js";

export interface DiffSide {
  /** "model", "kvm", "model(setXsaveApxAbsent=init-zeros)" … */
  readonly name: string;
  readonly kvm: Kvm;
}

/**
 * The differential harness: runs `scenario` on both kernels and compares everything userspace can
 * observe. Against the real kernel pass the host quirks (default); model against model, pass [] so
 * every difference counts.
 */
export function diffKernels(
  scenario: RealScenario,
  left: DiffSide,
  right: DiffSide,
  profile: CpuProfile,
  quirks: readonly HostQuirk[] = HOST_QUIRKS,
  pending: readonly PendingModelBug[] = [],
): DiffReport {
  const a = observeScenario(left.kvm, scenario, profile);
  const b = observeScenario(right.kvm, scenario, profile);
  return compareObservations(scenario, { name: left.name, obs: a }, { name: right.name, obs: b }, quirks, pending);
}
