import type { SiteKind, InvariantName, CostCounters } from "./explorable.js";
import type { PhysicalCpu } from "../cpu/physical-cpu.js";
import type { Instruction } from "../cpu/instructions.js";
import type { CompiledInstruction } from "../cpu/executor.js";
import type { ModelOptions } from "../model-options.js";
import type { VcpuState } from "./vcpu.js";
import type { RegLayout } from "./regs.js";
import type { Design, Anchor } from "./designs.js";
import type { GuestExit } from "./guest-exit.js";
import type { MachineState } from "./machine-state.js";
import type { RegCacheCtx } from "./register-cache.js";
import type { CpuidEntry } from "../cpu/cpuid.js";
import type { VendorField } from "./vendor-fields.js";

/**
 * The model's `kvm_x86_ops` (docs/facts.md#vmx, docs/facts.md#svm, docs/facts.md#tdx): the ONLY door
 * between core and a backend. Core owns vcpu_enter_guest (x86.c); a backend owns its `vcpu_run`
 * (entry asm, VM-entry, VM-exit, exit asm), its register cache loads, its fastpath and exit handlers,
 * and says who swaps XCR0/XSS/PKRU.
 * Backends: VMX (@kvmx/vmx), nested VMX and TDX (@kvmx/vmx), SVM and SEV-ES (@kvmx/svm).
 */
export interface VendorOps {
  /** Registry name, e.g. "vmx", "svm", "sev-es", "tdx", "nvmx". */
  readonly name: string;
  readonly description: string;

  /**
   * The vendor state fields this backend's vCPUs have (defineVendorFields in vendor-fields.ts): the
   * Machine's packed state reserves a slot for each. Reading or writing an undeclared field is a model bug.
   */
  readonly vendorFields?: readonly VendorField[];

  /**
   * Who switches XCR0/XSS/PKRU around the guest (docs/facts.md#xfeature-switch, docs/facts.md#sev-es,
   * docs/facts.md#tdx-exits): "kvm" — x86.c's
   * kvm_load_xfeatures/PKRU sites do it; "hardware" — VM-entry/exit swap them (SEV-ES, or a
   * design with hardwareXcr0Switch) and the vendor's entry/exit sites call `ctx.hwSwapXfeatures`;
   * "module" — the TDX module loads the guest's and the vendor restores the host's in its own sites.
   */
  readonly xfeatureSwitch: "kvm" | "hardware" | "module";

  /**
   * Whether the guest's `insn` causes a VM-exit (VMX/SVM intercepts: XSETBV, CPUID, HLT, I/O, the
   * MSR accesses the MSR bitmap intercepts). Faults that precede exits are the executor's business.
   */
  intercepts(vcpu: VcpuState, insn: Instruction): boolean;

  /** True when KVM may not read or write this vCPU's registers (SEV-ES VMSA, TDX): state ioctls → EINVAL. */
  hasProtectedState(vcpu: VcpuState): boolean;

  /**
   * KVM-supported XCR0 adjustment (kvm_cpu_caps / kvm_caps.supported_xcr0): SVM removes APX and
   * MPX ("needs VMCB support"), VMX keeps what the host offers.
   */
  adjustSupportedXcr0(supported: bigint): bigint;

  /**
   * The registers the backend clears from regs_avail after every exit (VMX_REGS_LAZY_LOAD_SET,
   * SVM: PDPTR only, TDX: everything but the TDVMCALL GPRs). Used by core tests and the checker.
   */
  lazyAvailMask(layout: RegLayout): bigint;

  /**
   * `cache_reg(vcpu, reg)`: load `reg` from the vendor state into regs[]/rip. Called only when the
   * avail bit is clear; the vendor marks the register available FIRST, then loads (docs/facts.md#cache-reg).
   * Anything it cannot load is a kernel WARN (`ctx.warn`), not an exception.
   */
  cacheReg(ctx: VendorCtx, reg: number): void;

  /**
   * The vendor's part of one pass of the vcpu_run loop, as explicit sites, in order: the pre-entry
   * write-back, the asm entry, VM-entry (kind "hw"), the guest site (id "guest", kind "guest"; the
   * core runs the guest program there), VM-exit ("hw"), the exit asm, avail clearing, NMI handling.
   * It MUST place the anchor sites "asm-before-vmenter" and "asm-after-vmexit" (see designs.ts) —
   * `anchorSite()` builds them. Core appends the fastpath site and loops on REENTER_GUEST.
   */
  runSites(opts: { readonly pre: boolean }): readonly Site[];

  /** `exit_handlers_fastpath`: IRQs off, guest XCR0/XSS/PKRU still loaded (docs/facts.md#vmx-fastpath). */
  fastpath(ctx: VendorCtx): FastpathResult;

  /** `handle_exit_irqoff`: after host xfeatures are back (C site). */
  handleExitIrqoff(ctx: VendorCtx): void;

  /** `handle_exit`: the full exit handlers; return whether the exit goes to userspace or was handled in the kernel. */
  handleExit(ctx: VendorCtx): ExitDisposition;

  /**
   * VM-entry can fail here (VMX VM-Fail on invalid guest state): the checker offers a `vm-fail` event
   * (a KVM_RUN whose VM-entry fails) and the backend's VM-entry site honours `ctx.vmFailRequested`.
   */
  readonly canVmFail?: boolean;

  /**
   * load_mmu_pgd before VM-entry: a dirty cached CR3 goes to the vendor's guest CR3 (VMX: GUEST_CR3).
   * Only the cr3 feature's x86:mmu-reload step calls it (features.ts).
   */
  loadMmuPgd?(ctx: VendorCtx): void;

  /** Optional vendor-specific events (nested VM-entry/exit, TDVMCALL, GHCB...) and their alphabet. */
  vendorEvents?(state: MachineState): readonly VendorEvent[];
  applyVendorEvent?(ctx: VendorCtx, event: VendorEvent): void;

  /** Nested hooks (nVMX vmx_switch_vmcs and friends); absent for backends without nesting. */
  nested?: NestedOps;
}

/** `enum exit_fastpath_completion` (docs/facts.md#vmx-fastpath). */
export const FastpathResult = {
  NONE: 0,
  REENTER_GUEST: 1,
  EXIT_HANDLED: 2,
  EXIT_USERSPACE: 3,
} as const;
export type FastpathResult = (typeof FastpathResult)[keyof typeof FastpathResult];

/** What handle_exit decided: back to userspace (KVM_RUN returns) or handled in the kernel. */
export type ExitDisposition = "userspace" | "handled";

/** A vendor-specific event: plain JSON data with a `kind` starting with the vendor name, e.g. "nvmx:vmlaunch". */
export interface VendorEvent {
  readonly kind: string;
  readonly [k: string]: unknown;
}

export interface NestedOps {
  /** L1 enters L2 (vmcs01 → vmcs02 switch). */
  enterNested(ctx: VendorCtx): void;
  /** L2 exits to L1 (vmcs02 → vmcs01 switch). */
  exitNested(ctx: VendorCtx): void;
  /** is_guest_mode: the vCPU runs L2 now (scenario observations and expectations tell L1 from L2 by it). */
  isGuestMode?(vcpu: VcpuState): boolean;
}

/**
 * One site of the world switch (docs/model.md#sites). The sequencer (enter-guest.ts)
 * applies the per-site hardware rules before `run`: a C site in a `-mapxf` host needs live
 * XCR0.APX=1 and clobbers R16–R31; an armed NMI fires at an NMI-open site; design actions run at
 * anchor sites. Sites never re-state those rules themselves.
 */
export interface Site {
  /** Unique id, "<vendor or x86>:<name>", e.g. "vmx:asm-store-gprs". Scenario files name NMI sites by it. */
  readonly id: string;
  readonly kind: SiteKind;
  /** Can an NMI be taken here (a host NMI handler runs at this point)? The guest site: an NMI causes a VM-exit. */
  readonly nmiOpen: boolean;
  /** What the site does, one line (trace text). */
  readonly description: string;
  /** When set, the design's actions for this anchor run here (and `run`, if any, runs after them). */
  readonly anchor?: Anchor;
  /** Reached only after a VM-exit: skipped when VM-entry failed (the guest, the VM-exit site, the GPR store). */
  readonly exitPathOnly?: boolean;
  /**
   * For replaceable anchors ("guest-xfeatures", "host-xfeatures"): the default body, which runs only
   * when the design places no action at the anchor.
   */
  run?(ctx: VendorCtx): void;
}

/**
 * What a site or vendor hook can see and do while one event runs. It is a working copy: the
 * Machine clones the state before an event, so sites mutate freely.
 */
export interface VendorCtx extends RegCacheCtx {
  readonly st: MachineState;
  readonly vcpu: VcpuState;
  readonly cpu: PhysicalCpu;
  readonly design: Design;
  readonly options: ModelOptions;
  /** The host CPU enumerates APX (CPUID.(7,1):EDX[21]). */
  readonly cpuApx: boolean;
  /** The host kernel is built with -mapxf: its C code needs XCR0.APX=1 and may clobber R16–R31. */
  readonly kernelApx: boolean;
  /** Host XCR0 (what the host kernel runs with). */
  readonly hostXcr0: bigint;
  readonly hostXcr0Id: number;
  /** KVM-supported XCR0 after the vendor's adjustment. */
  readonly supportedXcr0: bigint;
  /** Who switches XCR0 for this vCPU in this run: the backend's, or "hardware" under a hardwareXcr0Switch design. */
  readonly xfeatureSwitch: VendorOps["xfeatureSwitch"];
  readonly backend: VendorOps;
  readonly cost: CostCounters;
  /** The exit the guest took in this pass (set by the guest site). */
  guestExit: GuestExit | undefined;
  /** The event asks VM-entry to fail (backends with canVmFail honour it at their VM-entry site). */
  readonly vmFailRequested: boolean;
  /** Set by the backend's VM-entry site when VM-entry failed in this pass. */
  vmFailed: boolean;
  /** The guest's CPUID table (what kvm_emulate_cpuid answers from). */
  readonly guestCpuid: readonly CpuidEntry[];
  /** Result of the fastpath in this pass. */
  fastpathResult: FastpathResult;

  /**
   * Executes one host instruction on the physical CPU through the core executor. A fault is the
   * host's: it is recorded (no-host-ud for #UD) and the instruction has no effect; returns false.
   */
  hostExec(insn: Instruction): boolean;
  /** hostExec for an instruction compiled once with compileInstruction (hot host code). */
  hostRun(insn: CompiledInstruction): boolean;
  /** A kernel WARN_ON: a recorded event in the trace, never an exception. */
  warn(message: string): void;
  violate(invariant: InvariantName, message: string): void;
  /**
   * Appends to the current trace step's description. Only traces keep notes: guard notes that
   * format values with `if (ctx.tracing)` (formatting a bigint costs more than the step it describes).
   */
  note(text: string): void;
  /** True when this run records a trace (`kvmx run`, counterexample replays); false while exploring. */
  readonly tracing: boolean;
  /** Queues an exception for the guest (kvm_queue_exception): it takes it at the next entry. */
  injectException(vector: "GP" | "UD", length: number): void;
  /** VM-entry/exit hardware XCR0/XSS/PKRU swap (SEV-ES, hardwareXcr0Switch designs). */
  hwSwapXfeatures(to: "guest" | "host"): void;
  /** Runs the host NMI handler (a C/NMI site) at the current point; used by vendor NMI-exit handling. */
  runHostNmi(where: string): void;
  /** The machine's model features (features.ts bits; 0 in the default model). */
  readonly features: number;
}

/** Builds the anchor site a backend places in its run sequence. */
export function anchorSite(anchor: Anchor, id: string, kind: SiteKind, description: string): Site {
  return { id, kind, nmiOpen: kind !== "hw", description, anchor };
}
