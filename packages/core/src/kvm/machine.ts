/**
 * The Machine: KVM's vCPU layer on one host CPU with one backend and one design, as an Explorable
 * (explorable.ts). `apply` clones the state and runs the event through the same sequencer for
 * every backend and design (enter-guest.ts); invariants are monitors evaluated at every step.
 */
import { InputError } from "../errors.js";
import { hasCpuidFeature, supportedXcr0FromCpuid, cpuidLookup, type CpuidEntry, type CpuidResult } from "../cpu/cpuid.js";
import { cpuProfile, type CpuProfile } from "../cpu/cpu-profiles.js";
import { PhysicalCpu } from "../cpu/physical-cpu.js";
import { Tag } from "../cpu/provenance.js";
import { XFEATURE_MASK, XFEATURE_MASK_MPX } from "../cpu/xfeatures.js";
import { withOptions, type ModelOptions } from "../model-options.js";
import type { ApplyResult, Explorable, TraceStep } from "./explorable.js";
import { builtinDesign, type Design } from "./designs.js";
import type { KvmxEvent } from "./events.js";
import type { VendorOps } from "./vendor-ops.js";
import { cloneState, machineArrays, stateKey, type MachineState } from "./machine-state.js";
import { createVcpu, type VcpuState } from "./vcpu.js";
import { applyEvent } from "./apply-event.js";
import { eventAlphabet, type AlphabetOptions } from "./alphabet.js";
import { guestCpuidEntries } from "./guest-cpuid.js";
import { KVM_SUPPORTED_XCR0 } from "../cpu/xcr0-rules.js";

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
}

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
  readonly options: ModelOptions;
  readonly pre: boolean;
  readonly designs: ReadonlyMap<string, Design>;
  readonly alphabet: AlphabetOptions;
}

export interface Machine extends Explorable<MachineState, KvmxEvent> {
  readonly config: ResolvedConfig;
  /** A fresh VM: vCPU 0 created (both bitmaps all ones), the CPU in the VMM task with its R16–R31 tagged host-user. */
  initialState(): MachineState;
  /** The ids of the NMI-open sites of one KVM_RUN (for `nmi` events and scenario validation). */
  nmiSites(): readonly string[];
}

/** The VMM task's own R16..R31 (host-user): distinct recognisable values (0x5655_4d00_0000_00nn, "VUM"). */
export const HOST_USER_EGPR = (i: number): bigint => 0x5655_4d00_0000_0000n + BigInt(i);
/** What "another host task using APX" leaves in R16..R31 when it is preempted in. */
export const OTHER_TASK_EGPR = (i: number): bigint => 0x4f54_4800_0000_0000n + BigInt(i);
/** What -mapxf host kernel C code leaves in R16..R31 (caller-saved scratch). */
export const HOST_KERNEL_EGPR = (i: number): bigint => 0x4b45_5200_0000_0000n + BigInt(i);

export function resolveConfig(config: MachineConfig): ResolvedConfig {
  const design = typeof config.design === "string" ? lookupDesign(config.design, config.designs) : config.design;
  const options = withOptions(config.options);
  const hostCpu = typeof config.host.cpu === "string" ? cpuProfile(config.host.cpu, options) : config.host.cpu;
  const lookup = (l: number, s: number): CpuidResult => cpuidLookup(hostCpu.cpuid, l, s);
  const cpuApx = hasCpuidFeature(lookup, "APX_F");
  let hostXcr0 = supportedXcr0FromCpuid(lookup);
  // Linux refuses XSAVE features when MPX and APX are both enumerated (FACTS.md §1): keep APX, drop MPX.
  if (cpuApx) hostXcr0 &= ~XFEATURE_MASK_MPX;
  if (!cpuApx) hostXcr0 &= ~XFEATURE_MASK.APX;
  const supportedXcr0 = config.backend.adjustSupportedXcr0(hostXcr0 & KVM_SUPPORTED_XCR0);
  const guestApx = config.guest.apx && (supportedXcr0 & XFEATURE_MASK.APX) !== 0n;
  const designs = new Map<string, Design>();
  for (const d of config.designs ?? []) designs.set(d.name, d);
  designs.set(design.name, design);
  return {
    backend: config.backend,
    design,
    hostCpu,
    cpuApx,
    kernelApx: config.host.kernelApx,
    hostXcr0,
    supportedXcr0,
    guestApx,
    guestCpuid: guestCpuidEntries(hostCpu.cpuid, supportedXcr0, guestApx),
    options,
    pre: config.pre ?? false,
    designs,
    alphabet: config.alphabet ?? {},
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
export function newVcpu(cfg: ResolvedConfig, id: number, design: Design): VcpuState {
  const lookup = (l: number, s: number) => cpuidLookup(cfg.guestCpuid, l, s);
  const v = createVcpu({
    id,
    design: design.name,
    pre: cfg.pre,
    egprsInRegs: design.egprHome === "regs",
    fpstateHasApx: design.egprHome === "fpstate" && cfg.cpuApx,
    cpuid: { xcr0Mask: supportedXcr0FromCpuid(lookup), apx: cfg.guestApx },
    protectedState: design.egprHome === "hardware",
  });
  return cfg.backend.hasProtectedState(v) && !v.protectedState ? { ...v, protectedState: true } : v;
}

export function createMachine(config: MachineConfig): Machine {
  const cfg = resolveConfig(config);
  const initialState = (): MachineState => {
    const cpu = new PhysicalCpu({ xcr0: cfg.hostXcr0, tag: Tag.hostUser });
    cpu.cpl = 3; // between events the CPU runs the VMM task
    for (let i = 0; i < 16; i++) cpu.setGpr(16 + i, HOST_USER_EGPR(i), Tag.hostUser);
    // The VMM has used its R16–R31, so component 19 is in use (XINUSE[19]=1) on an APX CPU.
    if (cfg.cpuApx) cpu.xinuse |= XFEATURE_MASK.APX;
    return {
      cpu,
      vcpus: [newVcpu(cfg, 0, cfg.design)],
      current: 0,
      ...machineArrays(),
      userXstateBv: 0n,
      armedNmi: undefined,
      warnings: 0,
    };
  };
  let nmiSiteCache: readonly string[] | undefined;
  const machine: Machine = {
    config: cfg,
    initialState,
    nmiSites: () => (nmiSiteCache ??= listNmiSites(cfg)),
    apply(state: MachineState, event: KvmxEvent, trace?: TraceStep[]): ApplyResult<MachineState> {
      const st = cloneState(state);
      return applyEvent(cfg, st, event, trace);
    },
    events: (state: MachineState) => eventAlphabet(cfg, state, machine.nmiSites()),
    key: stateKey,
  };
  return machine;
}

import { listNmiSites } from "./enter-guest.js";
