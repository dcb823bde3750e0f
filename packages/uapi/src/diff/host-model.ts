import type { CpuProfile, VendorOps } from "@kvmx/core";
import type { HostDescription } from "../host/host-description.js";
import type { ModelKvmConfig } from "../model/model-config.js";
import type { RealScenario } from "./real-scenario.js";
import { profileOfFacts, type KernelFacts } from "./transcript.js";

/**
 * How the model side of a comparison with a real kernel is built. Against an upstream kernel
 * (kvm_amd, kvm_intel) the model is configured from what that kernel reports: its
 * KVM_GET_SUPPORTED_CPUID as the host CPU, its release for version-dependent capabilities and
 * limits, its online CPU count, the host kernel's user xfeatures; the scenario keeps its design
 * and assumptions. kvm_pvm reports
 * host-quirked CPUID (docs/facts.md#host-quirks), so there the scenario's own CPU profile is used.
 */
export interface HostModel {
  readonly config: ModelKvmConfig;
  /** The profile both sides' XSAVE images are cut with. */
  readonly profile: CpuProfile;
}

export function hostModel(scenario: RealScenario, host: HostDescription, facts: KernelFacts, backend: VendorOps): HostModel {
  const profile = profileOfFacts(facts, host);
  const common = { backend, design: scenario.model.design, options: scenario.model.options };
  if (host.hostKind === "kvm_pvm") return { config: { ...common, cpu: scenario.model.cpu }, profile };
  const xfeatures = host.userXfeatures ? { hostUserXfeatures: BigInt(host.userXfeatures) } : {};
  return { config: { ...common, cpu: profile, kernel: { release: host.kernel, onlineCpus: host.onlineCpus }, ...xfeatures }, profile };
}
