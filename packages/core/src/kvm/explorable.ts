/**
 * The contract between the model (core/kvm's Machine) and the checker (@kvmx/check). The checker
 * explores any Explorable breadth-first; the Machine implements it. Kept small on purpose: the
 * checker never looks inside a state, it only applies events, reads violations and hashes states.
 */

/** The invariants, by name (the eight of the APX checks, then the ones the known-bug corpus needs). */
export const INVARIANTS = {
  "no-host-ud": "no host instruction touches R16–R31 while the live XCR0 lacks APX",
  "apxf-c-needs-apx": "a -mapxf host runs no C site (fastpath, NMI handler, exit handlers) with XCR0.APX=0",
  "guest-integrity": "what the guest reads from R16–R31 is what it last wrote (or userspace set); first enable shows zeros",
  "no-leak": "no host-tagged value is ever readable by a guest, nor reported through the uAPI",
  "host-integrity": "the VMM task's own R16–R31 survive KVM_RUN",
  "uapi-truth": "KVM_GET_XSAVE component 19 equals the guest's architectural R16–R31, and SET-then-GET round-trips",
  "cache-coherence": "never avail=0/dirty=1; no stale read; dirty registers reach the VMCS/VMCB before entry",
  "confidential": "KVM never reads or writes protected guest registers and issues no XSETBV for the guest",
  "host-xstate": "host code runs under the host's XCR0 and an IA32_XFD its XSAVE/XRSTOR expect (none faults), and KVM_RUN returns to the VMM with the host's XCR0 and PKRU",
  "guest-state": "what the guest reads from PKRU, DR6 and CR3 is what it last wrote or what RESET/INIT set, never the host's",
  "uninit-read": "KVM never loads a cached guest register from VMCS/VMCB state it has not written since the vCPU was created",
} as const;
export type InvariantName = keyof typeof INVARIANTS;

export interface Violation {
  invariant: InvariantName;
  /** One line a kernel developer can act on. */
  message: string;
  /** Index of the trace step (within the event's steps) where it happened. */
  step: number;
  /** The site where it happened, e.g. "vmx:asm-store-gprs". */
  site?: string;
}

/** Per-round-trip action counts for the cost model (docs/model.md#costs). */
export interface CostCounters {
  xsetbv: number;
  egprLoads: number;
  egprStores: number;
  egprClears: number;
  push2pop2: number;
  branches: number;
  xsaveBytes: number;
  xrstorBytes: number;
}

export const zeroCost = (): CostCounters => ({
  xsetbv: 0, egprLoads: 0, egprStores: 0, egprClears: 0, push2pop2: 0, branches: 0, xsaveBytes: 0, xrstorBytes: 0,
});

/** Where a trace step ran: host C, host assembly, the guest, an NMI handler, userspace, or hardware itself (VM-entry/exit microcode). */
export type SiteKind = "c" | "asm" | "guest" | "nmi" | "user" | "hw";

/**
 * One step of a trace (`kvmx run`, counterexamples, the HTML timeline): a site of the world switch
 * or an event, with the live XCR0 and whose values sit in R16–R31 after it ran.
 */
export interface TraceStep {
  /** Site id, e.g. "x86:load-guest-xfeatures", "vmx:asm-store-gprs", "guest", "nmi:handler". */
  site: string;
  kind: SiteKind;
  /** What happened, one line. */
  description: string;
  /** Live XCR0 after the step. */
  xcr0: bigint;
  /** Provenance tag (see cpu/provenance.ts) of hardware R16..R31 after the step, 16 entries. */
  egprTags: readonly number[];
  /** Register-cache changes made by this step, by VCPU_REG_* name. */
  availSet?: readonly string[];
  availCleared?: readonly string[];
  dirtySet?: readonly string[];
  dirtyCleared?: readonly string[];
  /** Violations detected at this step. */
  violations?: readonly Violation[];
}

/** Which guest ran: L1 or its L2, on a backend with nesting (VendorOps.nested.isGuestMode). */
export type GuestLevel = "L1" | "L2";

/** The vCPU ioctls the model's events issue. */
export type IoctlName =
  | "KVM_RUN" | "KVM_GET_XSAVE2" | "KVM_SET_XSAVE" | "KVM_GET_REGS" | "KVM_SET_REGS" | "KVM_GET_XCRS" | "KVM_SET_XCRS";

/**
 * What one event showed from the outside — what a guest or a VMM could see. Recorded only when a
 * trace is recorded or the caller asks (applyEvent's `observe`), never while the checker explores:
 * scenario expectations compare against these.
 */
export type Observation =
  /** A guest instruction read `reg` (a guest-read): the value it got, and in which guest. */
  | { readonly kind: "guest-read"; readonly reg: string; readonly value: bigint; readonly level?: GuestLevel }
  /**
   * A fault for the guest: raised by the CPU in non-root mode before any VM-exit (`by: "cpu"`, e.g.
   * XSETBV with CR4.OSXSAVE=0 → #UD), or queued by KVM (`by: "kvm"`, kvm_queue_exception: an XSETBV
   * __kvm_set_xcr refuses → #GP(0)). #GP and #SS carry an error code, #UD none.
   */
  | {
      readonly kind: "guest-fault"; readonly vector: "UD" | "GP" | "SS" | "NM"; readonly errorCode?: number;
      readonly by: "cpu" | "kvm"; readonly detail: string; readonly level?: GuestLevel;
    }
  /**
   * An ioctl and its result: ok, or the errno. KVM_RUN also says why the guest last stopped (`exit`,
   * a guest-exit.ts kind) and whether KVM returned to userspace for it.
   */
  | {
      readonly kind: "ioctl"; readonly ioctl: IoctlName; readonly ok: boolean; readonly errno?: string; readonly reason?: string;
      readonly exit?: string; readonly toUserspace?: boolean;
    }
  /** What KVM_GET_XSAVE2 returned: the standard-format image, its XSTATE_BV, component 19 when present. */
  | { readonly kind: "xsave"; readonly xstateBv: bigint; readonly apx?: readonly bigint[]; readonly bytes: Uint8Array }
  /** kvm_run->s.regs as store_regs left it (KVM_SYNC_X86_REGS in kvm_valid_regs), by struct kvm_regs field. */
  | { readonly kind: "sync-regs"; readonly regs: Readonly<Record<string, bigint>> };

/**
 * Violations of an event the model folds into the one applied (an event that changes nothing the
 * model keeps but can break an invariant, e.g. a host NMI in a -mapxf kernel): `before`, applied first,
 * then the applied event, breaks `violations`; without them both reach the same state.
 */
export interface FoldedViolations<E = unknown> {
  readonly before: E;
  readonly violations: readonly Violation[];
}

/** What applying one event produced. */
export interface ApplyResult<S, E = never> {
  state: S;
  violations: Violation[];
  /**
   * Violations of folded events (FoldedViolations): the checker reports each with `before` put back
   * into its path, one event longer, and still expands `state`. Absent: none.
   */
  folded?: FoldedViolations<E>[];
  cost: CostCounters;
  /** What the event showed; present only when a trace was recorded or observations were asked for. */
  observations?: Observation[];
  /** Which assumptions the run read (bit k = ASSUMPTION_NAMES[k]); absent: none, or not tracked. */
  consulted?: number;
  /** Design actions that ran (past the protected-state check); absent when not tracked. */
  designActions?: number;
}

/**
 * A model that runs under one of several assumption valuations (model-options.ts AssumptionSpace):
 * `apply` takes the valuation's index, reports which assumptions it read, and `agreeing` says which
 * valuations would have run the same way — the checker explores all valuations at once and splits
 * only where a run read an assumption on which they differ.
 */
export interface Variability {
  readonly count: number;
  agreeing(variant: number, consulted: number): number;
  /** The assumptions where a valuation differs from the defaults (for reports). */
  describe(variant: number): Readonly<Record<string, string>>;
}

/**
 * A model the checker can explore. Events are plain JSON-able data (they become scenario files).
 * `apply` must not mutate its input state. `key` is canonical: two states with equal keys behave the
 * same for every future event sequence (it must include everything the invariants depend on).
 */
export interface Explorable<S, E> {
  /**
   * Applies one event to a copy of `state`; when `trace` is given, every step is pushed onto it.
   * `variant` selects the assumption valuation (default 0) when the model has `variability`.
   */
  apply(state: S, event: E, trace?: TraceStep[], variant?: number): ApplyResult<S, E>;
  readonly variability?: Variability;
  /** The events enabled in a state (the event alphabet, filtered by what the state allows). */
  events(state: S): readonly E[];
  key(state: S): string;
  /**
   * Optional fast path for `key`: a 64-bit hash of the canonical key written into `out` (no string).
   * States with equal keys must get equal fingerprints; the checker uses it when present.
   */
  fingerprint?(state: S, out: { hi: number; lo: number }): { hi: number; lo: number };
  /**
   * Optional, together: the state as 32-bit integer words, and a state from such words (a copy the
   * model owns: the checker reuses the buffer the words were in). The checker then keeps the states
   * waiting to be expanded packed in shared buffers.
   */
  pack?(state: S): ArrayLike<number>;
  unpack?(words: Int32Array): S;
}
