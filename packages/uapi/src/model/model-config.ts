import {
  builtinDesign,
  cpuProfile,
  hasCpuidFeature,
  InputError,
  kvmSupportedXcr0,
  lookupCpuid,
  withOptions,
  XFEATURE_MASK,
  XFEATURE_MASK_MPX,
  type CpuProfile,
  type Design,
  type ModelOptions,
  type VendorOps,
} from "@kvmx/core";

/**
 * What a simulated /dev/kvm is built from: a host CPU profile (what the "hardware" enumerates), the
 * backend (core's kvm_x86_ops: VMX or SVM; passed in, uapi never imports a vendor), the design that
 * decides where guest R16–R31 live between runs, and the model assumptions (ASSUMPTIONS table).
 */
export interface ModelKvmConfig {
  /** The vendor ops object (e.g. vmxBackend from @kvmx/vmx). */
  backend: VendorOps;
  /** A core CPU profile, or a built-in profile name ("spr", "dmr", "zen"). Default "spr". */
  cpu?: CpuProfile | string;
  /** A design or a built-in design name. Default "asm-conditional" (regs[] home, docs/facts.md#upstream-choice). */
  design?: Design | string;
  options?: Partial<ModelOptions>;
  /**
   * The host kernel's user xfeatures (fpu_user_cfg.max_features), which KVM_GET_XSAVE reports in
   * bytes 464..471; default: the host XCR0 derived from the profile.
   */
  hostUserXfeatures?: bigint;
  /** The kernel being modelled: its release (version-dependent capabilities and limits) and online CPUs. */
  kernel?: KernelParams;
}

/** What a kernel's capabilities depend on besides the CPU (see kernel-release.ts). */
export interface KernelParams {
  /** uname -r of the kernel, e.g. "6.12.117+deb12-amd64". */
  readonly release: string;
  /** num_online_cpus() of its host. */
  readonly onlineCpus: number;
}

/** The kernel the model describes when none is named: a 6.12 kernel on a one-CPU host. */
export const DEFAULT_KERNEL_PARAMS: KernelParams = { release: "6.12.0", onlineCpus: 1 };

/** The configuration after name resolution, shared by the Kvm, its VMs and vCPUs. */
export interface ResolvedModelConfig {
  readonly backend: VendorOps;
  readonly profile: CpuProfile;
  readonly design: Design;
  readonly options: ModelOptions;
  /** Host XCR0: the profile's leaf 0xD mask, MPX dropped on an APX part (docs/facts.md#apx-mpx-exclusion). */
  readonly hostXcr0: bigint;
  /** kvm_caps.supported_xcr0 after the vendor's adjustment (docs/facts.md#supported-xcr0). */
  readonly supportedXcr0: bigint;
  /** The host CPU enumerates APX_F. */
  readonly cpuApx: boolean;
  readonly kernel: KernelParams;
  readonly hostUserXfeatures: bigint;
  /** The vendor module the backend stands for: kvm_amd (svm, svm-apx, sev-es) or kvm_intel. */
  readonly vendor: "amd" | "intel";
}

export const DEFAULT_MODEL_DESIGN = "asm-conditional";
export const DEFAULT_MODEL_CPU = "spr";

export function resolveModelConfig(config: ModelKvmConfig): ResolvedModelConfig {
  const options = withOptions(config.options);
  const cpu = config.cpu ?? DEFAULT_MODEL_CPU;
  const profile = typeof cpu === "string" ? cpuProfile(cpu, options) : cpu;
  const designArg = config.design ?? DEFAULT_MODEL_DESIGN;
  const design = typeof designArg === "string" ? builtinDesign(designArg) : designArg;
  if (!design) throw new InputError(`unknown design "${String(designArg)}"`);
  const cpuApx = hasCpuidFeature(lookupCpuid(profile), "APX_F");
  let hostXcr0 = profile.supportedXcr0;
  if (cpuApx) hostXcr0 &= ~XFEATURE_MASK_MPX;
  else hostXcr0 &= ~XFEATURE_MASK.APX;
  const supportedXcr0 = config.backend.adjustSupportedXcr0(kvmSupportedXcr0(hostXcr0, "vmx"));
  return { backend: config.backend, profile, design, options, hostXcr0, supportedXcr0, cpuApx, kernel: config.kernel ?? DEFAULT_KERNEL_PARAMS, hostUserXfeatures: config.hostUserXfeatures ?? hostXcr0, vendor: /^(svm|sev)/.test(config.backend.name) ? "amd" : "intel" };
}
