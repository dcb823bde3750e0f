/**
 * The Machine: KVM's vCPU layer on one host CPU with one backend and one design, as an Explorable
 * (explorable.ts). `apply` clones the state and runs the event through the same sequencer for
 * every backend and design (enter-guest.ts); invariants are monitors evaluated at every step.
 */
import { InputError } from "../errors.js";
import { vid } from "../cpu/values.js";
import { hasCpuidFeature, supportedXcr0FromCpuid, cpuidLookup, cpuidLookupMemo, type CpuidEntry, type CpuidResult } from "../cpu/cpuid.js";
import { cpuProfile, type CpuProfile } from "../cpu/cpu-profiles.js";
import { Tag } from "../cpu/provenance.js";
import { XFEATURE_MASK, XFEATURE_MASK_MPX } from "../cpu/xfeatures.js";
import { AssumptionSpace, recordingOptions, type ModelOptions, type RecordingOptions } from "../model-options.js";
import type { ApplyResult, Explorable, TraceStep } from "./explorable.js";
import { builtinDesign, type Design } from "./designs.js";
import type { KvmxEvent } from "./events.js";
import type { VendorOps } from "./vendor-ops.js";
import { emptyMachineState, fingerprint, MachineLayout, MachineState, stateKey } from "./machine-state.js";
import { VcpuBlockLayout, type VcpuDesignInfo, type VcpuState } from "./vcpu.js";
import { regLayout } from "./regs.js";
import { BUILTIN_DESIGNS } from "./designs.js";
import { DEFAULT_VALUES } from "./alphabet.js";
import { FASTPATH_MSRS } from "./emulate.js";
import { applyEvent } from "./apply-event.js";
import { eventAlphabet, hostNmisFolded, type AlphabetOptions } from "./alphabet.js";
import { guestCpuidEntries } from "./guest-cpuid.js";
import { KVM_SUPPORTED_XCR0 } from "../cpu/xcr0-rules.js";
import { resolveVariant, type ResolvedVariant, type Variant } from "./variants.js";
import { initFeatureState, initVcpuFeatures } from "./feature-state.js";

/** A host CPU: a core CPU profile (cpu-profiles.ts: spr, dmr, zen, or one built from a real CPUID dump). */
export type HostCpu = CpuProfile;

export interface MachineConfig {
  /** The vendor ops object (vmxBackend from @kvmx/vmx, ...). Core knows no vendor. */
  backend: VendorOps;
  /** A design, or the name of a built-in one. */
  design: Design | string;
  host: {
    /** A CPU profile, or a built-in profile name ("spr", "dmr", "zen"). */
    cpu: HostCpu | string;
    /** Host kernel built with -mapxf (its C code uses R16–R31 and needs XCR0.APX=1). */
    kernelApx: boolean;
  };
  guest: {
    /** The guest's CPUID advertises APX_F (and XCR0 bit 19 in leaf 0xD). */
    apx: boolean;
  };
  options?: Partial<ModelOptions>;
  /** PRE code generation (RIP in regs[16], u32 masks) instead of POST. */
  pre?: boolean;
  /** Further designs `migrate` events may name (built-ins are always available). */
  designs?: readonly Design[];
  /** Shapes `events(state)` for the checker (which values, which event kinds). */
  alphabet?: AlphabetOptions;
  /** MSRs (by index) the vCPUs' state has room for besides the ones the model always keeps. */
  msrs?: readonly number[];
  /**
   * The assumption valuations `apply` can run under (its `variant` argument indexes them). Default:
   * just `options` (no sweep).
   */
  assumptions?: AssumptionSpace;
  /**
   * KVM's code as this machine runs it (variants.ts): the model features it needs and edits of KVM's
   * step sequences. Absent: the default model (no feature, the sequences of docs/model.md#sites).
   */
  variant?: Variant;
}

/** MSRs every vCPU keeps: the fastpath MSRs the model's guests write (IA32_TSC_DEADLINE, x2APIC ICR). */
export const MODEL_MSRS: readonly number[] = FASTPATH_MSRS;

/** The configuration after name resolution: what every site and monitor reads. */
export interface ResolvedConfig {
  readonly backend: VendorOps;
  readonly design: Design;
  readonly hostCpu: HostCpu;
  readonly cpuApx: boolean;
  readonly kernelApx: boolean;
  readonly hostXcr0: bigint;
  /** KVM-supported XCR0 (kvm_caps.supported_xcr0) after the vendor's adjustment. */
  readonly supportedXcr0: bigint;
  readonly guestApx: boolean;
  readonly guestCpuid: readonly CpuidEntry[];
  /** The options every run reads: valuation 0 of `assumptions`, reads recorded (model-options.ts). */
  readonly options: RecordingOptions;
  readonly assumptions: AssumptionSpace;
  readonly pre: boolean;
  readonly designs: ReadonlyMap<string, Design>;
  readonly alphabet: AlphabetOptions;
  /** Events that run the vCPU check the host NMI handler at every NMI-open host site (alphabet.ts hostNmisFolded). */
  readonly foldHostNmis: boolean;
  /** The packed-state layout of this machine's states. */
  readonly layout: MachineLayout;
  /** hostXcr0 as a value id. */
  readonly hostXcr0Id: number;
  /** The features the FPU core saves and restores for the VMM task (XFEATURE_MASK_FPSTATE: host XCR0 without PKRU), as an id. */
  readonly hostFpstateMaskId: number;
  /** The model features on (features.ts bits; 0 = the default model). */
  readonly features: number;
  /** The machine's variant, resolved for its backend (undefined = the default sequences). */
  readonly variant?: ResolvedVariant;
  /** cpuidLookup on the host's and the guest's tables, memoised (cpuid.ts cpuidLookupMemo). */
  readonly hostCpuidLookup: (leaf: number, subleaf: number) => CpuidResult;
  readonly guestCpuidLookup: (leaf: number, subleaf: number) => CpuidResult;
}

export interface Machine extends Explorable<MachineState, KvmxEvent> {
  readonly config: ResolvedConfig;
  /** A fresh VM: vCPU 0 created (both bitmaps all ones), the CPU in the VMM task with its R16–R31 tagged host-user. */
  initialState(): MachineState;
  /** The ids of the NMI-open sites of one KVM_RUN (for `nmi` events and scenario validation). */
  nmiSites(): readonly string[];
}

export { HOST_USER_EGPR, OTHER_TASK_EGPR, HOST_KERNEL_EGPR } from "./host-values.js";
import { HOST_USER_EGPR } from "./host-values.js";

export function resolveConfig(config: MachineConfig): ResolvedConfig {
  const design = typeof config.design === "string" ? lookupDesign(config.design, config.designs) : config.design;
  const assumptions = config.assumptions ?? new AssumptionSpace(config.options ?? {}, "default");
  const options = recordingOptions(assumptions.valuations[0]!);
  const hostCpu = typeof config.host.cpu === "string" ? cpuProfile(config.host.cpu, options) : config.host.cpu;
  const lookup = (l: number, s: number): CpuidResult => cpuidLookup(hostCpu.cpuid, l, s);
  const cpuApx = hasCpuidFeature(lookup, "APX_F");
  let hostXcr0 = supportedXcr0FromCpuid(lookup);
  // Linux refuses XSAVE features when MPX and APX are both enumerated (docs/facts.md#apx-mpx-exclusion): keep APX, drop MPX.
  if (cpuApx) hostXcr0 &= ~XFEATURE_MASK_MPX;
  if (!cpuApx) hostXcr0 &= ~XFEATURE_MASK.APX;
  const supportedXcr0 = config.backend.adjustSupportedXcr0(hostXcr0 & KVM_SUPPORTED_XCR0);
  const guestApx = config.guest.apx && (supportedXcr0 & XFEATURE_MASK.APX) !== 0n;
  const designs = new Map<string, Design>();
  for (const d of config.designs ?? []) designs.set(d.name, d);
  designs.set(design.name, design);
  const guestCpuid = guestCpuidEntries(hostCpu.cpuid, supportedXcr0, guestApx);
  const guestLookup = (l: number, s: number) => cpuidLookup(guestCpuid, l, s);
  // Every design a vCPU of this machine may run under: this one first, then user designs, then the built-ins.
  const all = [design, ...[...designs.values()].filter((d) => d !== design)];
  for (const d of BUILTIN_DESIGNS) if (!all.some((x) => x.name === d.name)) all.push(d);
  const pre = config.pre ?? false;
  const infos: VcpuDesignInfo[] = all.map((d) => ({
    name: d.name,
    layout: regLayout({ pre, egprsInRegs: d.egprHome === "regs" }),
    fpstateHasApx: d.egprHome === "fpstate" && cpuApx,
  }));
  const block = new VcpuBlockLayout(
    infos,
    { xcr0Mask: supportedXcr0FromCpuid(guestLookup), apx: guestApx },
    [...new Set([...MODEL_MSRS, ...(config.msrs ?? [])])],
    config.backend.vendorFields ?? [],
    false,
    config.variant !== undefined,
  );
  const alphabet = config.alphabet ?? {};
  const layout = new MachineLayout(block, allNmiSiteIds(config.backend, pre), (alphabet.values ?? DEFAULT_VALUES).map((v) => BigInt(v)));
  const variant = config.variant ? resolveVariant(config.variant, config.backend, pre) : undefined;
  return {
    backend: config.backend,
    design,
    hostCpu,
    cpuApx,
    kernelApx: config.host.kernelApx,
    hostXcr0,
    supportedXcr0,
    guestApx,
    guestCpuid,
    options,
    assumptions,
    pre,
    designs,
    alphabet,
    layout,
    hostXcr0Id: vid(hostXcr0),
    hostFpstateMaskId: vid(hostXcr0 & ~XFEATURE_MASK.PKRU),
    features: variant?.features ?? 0,
    foldHostNmis: hostNmisFolded({ alphabet, kernelApx: config.host.kernelApx }),
    ...(variant ? { variant } : {}),
    hostCpuidLookup: cpuidLookupMemo(hostCpu.cpuid),
    guestCpuidLookup: cpuidLookupMemo(guestCpuid),
  };
}

function lookupDesign(name: string, extra: readonly Design[] | undefined): Design {
  const d = extra?.find((x) => x.name === name) ?? builtinDesign(name);
  if (!d) throw new InputError(`unknown design "${name}"`);
  return d;
}

/** Finds a design by name for a migration target: the config's designs first, then the built-ins. */
export function designByName(cfg: ResolvedConfig, name: string): Design {
  const d = cfg.designs.get(name) ?? builtinDesign(name);
  if (!d) throw new InputError(`unknown design "${name}"`);
  return d;
}

/** kvm_arch_vcpu_create for the Machine: the vCPU's layout and fpstate follow its design's EGPR home. */
export function newVcpu(cfg: ResolvedConfig, st: MachineState, id: number, design: Design): VcpuState {
  const block = cfg.layout.vcpuBlock;
  const index = block.designIndex(design.name);
  const v = st.addVcpu(id, index, design.egprHome === "hardware");
  if (cfg.features !== 0) initVcpuFeatures(cfg, st, v);
  if (!v.protectedState && cfg.backend.hasProtectedState(v)) v.protectedState = true;
  return v;
}

export function createMachine(config: MachineConfig): Machine {
  const cfg = resolveConfig(config);
  const initialState = (): MachineState => {
    const st = emptyMachineState(cfg.layout, cfg.hostXcr0);
    const cpu = st.cpu;
    cpu.cpl = 3; // between events the CPU runs the VMM task
    for (let i = 0; i < 16; i++) cpu.setGpr(16 + i, HOST_USER_EGPR(i), Tag.hostUser);
    // The VMM has used its R16–R31, so component 19 is in use (XINUSE[19]=1) on an APX CPU.
    if (cfg.cpuApx) cpu.xinuse |= XFEATURE_MASK.APX;
    newVcpu(cfg, st, 0, cfg.design);
    if (cfg.features !== 0) initFeatureState(cfg, st);
    return st;
  };
  let nmiSiteCache: readonly string[] | undefined;
  const machine: Machine = {
    config: cfg,
    initialState,
    nmiSites: () => (nmiSiteCache ??= listNmiSites(cfg)),
    apply(state: MachineState, event: KvmxEvent, trace?: TraceStep[], variant = 0): ApplyResult<MachineState, KvmxEvent> {
      const opts = cfg.options;
      opts.current = cfg.assumptions.valuations[variant] ?? opts.current;
      opts.consulted = 0;
      const r = applyEvent(cfg, state.copy(), event, trace);
      r.consulted = opts.consulted;
      return r;
    },
    variability: cfg.assumptions.size > 1
      ? { count: cfg.assumptions.size, agreeing: (v, c) => cfg.assumptions.agreeing(v, c), describe: (v) => cfg.assumptions.describe(v) }
      : undefined,
    events: (state: MachineState) => eventAlphabet(cfg, state, machine.nmiSites()),
    key: stateKey,
    fingerprint,
    pack: (state: MachineState) => state.a,
    unpack: (words: Int32Array) => MachineState.fromWords(cfg.layout, words),
  };
  return machine;
}

import { allNmiSiteIds, listNmiSites } from "./enter-guest.js";
