/**
 * EGPR switch designs as DATA (docs/model.md#design-schema, docs/facts.md#design-positions). A design says
 * where guest R16–R31 live and which actions run at which anchors, each guarded by a condition. The sequencer
 * (enter-guest.ts) executes the actions through the core executor; a design never carries its expected verdict
 * — verdicts come from running the model.
 */
import type { SiteKind } from "./explorable.js";

/**
 * Vendor-neutral points of the world switch. Core places the C ones around kvm_load_xfeatures; each
 * backend's run sequence places the two asm ones. `replaceable`: a design that puts actions there
 * replaces the default body (kvm_load_xfeatures for guest/host).
 */
export const ANCHORS = {
  "pre-guest-xfeatures": { kind: "c", replaceable: false, description: "C, before the guest XCR0 load: host XCR0 live" },
  "guest-xfeatures": { kind: "c", replaceable: true, description: "the guest XCR0/XSS load itself (kvm_load_xfeatures(vcpu, true)); designs with actions here replace it" },
  "post-guest-xfeatures": { kind: "c", replaceable: false, description: "C, right after the guest XCR0 load: guest XCR0 live" },
  "vcpu-run": { kind: "c", replaceable: false, description: "the vendor's vcpu_run in C right before the entry asm (IRQs off, guest XCR0 live): where entry flags are computed" },
  "asm-entry": { kind: "asm", replaceable: false, description: "entry asm before the guest SPEC_CTRL write" },
  "asm-before-vmenter": { kind: "asm", replaceable: false, description: "entry asm after the GPR load, guest XCR0 live, just before VM-entry" },
  "asm-after-vmexit": { kind: "asm", replaceable: false, description: "exit asm right after VM-exit, before any C code (not reached after a VM-Fail)" },
  "asm-exit": { kind: "asm", replaceable: false, description: "exit asm after the RSB fill and the host SPEC_CTRL restore, last before C (VM-Fail comes here too)" },
  "pre-host-xfeatures": { kind: "c", replaceable: false, description: "C after the fastpath, before the host XCR0 load: guest XCR0 still live" },
  "host-xfeatures": { kind: "c", replaceable: true, description: "the host XCR0/XSS load itself (kvm_load_xfeatures(vcpu, false)); designs with actions here replace it" },
  "post-host-xfeatures": { kind: "c", replaceable: false, description: "C right after the host XCR0 load: host XCR0 live" },
} as const satisfies Record<string, { kind: SiteKind; replaceable: boolean; description: string }>;
export type Anchor = keyof typeof ANCHORS;
export const ANCHOR_NAMES = Object.keys(ANCHORS) as Anchor[];

/**
 * What an action does: move R16–R31 between hardware and regs[], clear them, XSETBV, or `latch` a
 * flag — evaluate `when` once (e.g. in C before entry) and remember it for this pass of vcpu_run, so
 * later actions can test it with `flag:<name>` (the way Intel's tree computes its entry flag).
 */
export const ACTION_OPS = ["load-egprs", "store-egprs", "clear-egprs", "xsetbv", "latch"] as const;
export type ActionOp = (typeof ACTION_OPS)[number];

/** XSETBV targets: the guest's XCR0, the host's, or the "early" XCR0 = guest XCR0 | APX (Paolo's second proposal). */
export const XCR0_TARGETS = ["guest", "host", "early"] as const;
export type Xcr0Target = (typeof XCR0_TARGETS)[number];

/** How EGPRs are moved: one MOV per register, or PUSH2/POP2 pairs (Chang's measurement, docs/facts.md#position-asm-unconditional). */
export const MOVE_VIAS = ["mov", "push2pop2"] as const;
export type MoveVia = (typeof MOVE_VIAS)[number];

/**
 * Conditions an action is guarded by; "!" negates. Each conditional action costs one branch.
 * cpu-apx: host CPU enumerates APX; guest-xcr0-apx: the vCPU's guest XCR0 has bit 19;
 * guest-cpuid-apx: the guest's CPUID has APX_F; kernel-apx: the host kernel is built with -mapxf;
 * flag:<name>: a flag a `latch` action set earlier in this pass of vcpu_run (false until then).
 * A list of conditions holds when every one does.
 */
export const CONDITIONS = ["always", "cpu-apx", "guest-xcr0-apx", "guest-cpuid-apx", "kernel-apx"] as const;
export type BaseCondition = (typeof CONDITIONS)[number];
export type FlagCondition = `flag:${string}`;
export type Condition = BaseCondition | `!${Exclude<BaseCondition, "always">}` | FlagCondition | `!${FlagCondition}`;
/** A flag name: lower-case words joined by "-" (e.g. egpr-switch). */
export const FLAG_NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

export interface DesignAction {
  readonly anchor: Anchor;
  readonly op: ActionOp;
  /** Only for op "xsetbv". */
  readonly xcr0?: Xcr0Target;
  /** Only for load/store: how registers move (default "mov"). */
  readonly via?: MoveVia;
  /** Default "always" (no branch); a list holds when every condition does. */
  readonly when?: Condition | readonly Condition[];
  /** Only for op "latch": the flag it sets. */
  readonly flag?: string;
}

/** Where guest R16–R31 live between runs (docs/facts.md#design-positions). */
export type EgprHome = "regs" | "fpstate" | "hardware";

export interface Design {
  readonly name: string;
  /** One line. */
  readonly description: string;
  /** Who proposed it, where in the discussion (docs/facts.md#design-positions). */
  readonly source: string;
  readonly egprHome: EgprHome;
  /** VM-entry/exit swap XCR0/XSS/PKRU in hardware, as SEV-ES does; KVM's kvm_load_xfeatures is skipped. */
  readonly hardwareXcr0Switch?: boolean;
  /**
   * vCPUs whose state the backend protects (SEV-ES VMSA, TDX module): "skip" (default) — the design's
   * actions do not run for them, as KVM keeps them on their own paths (kvm_load_xfeatures returns early
   * for protected state; SEV-ES and TDX have their own run functions); "apply" — they run anyway, to
   * check a design that forgot (the `confidential` invariant catches it).
   */
  readonly protectedGuests?: ProtectedGuests;
  /**
   * "off": exit_handlers_fastpath is not run (every exit takes the full path) — to check whether a
   * design's safety depends on the fastpath. Default "on".
   */
  readonly fastpath?: "on" | "off";
  readonly actions: readonly DesignAction[];
}

export const PROTECTED_GUESTS = ["skip", "apply"] as const;
export type ProtectedGuests = (typeof PROTECTED_GUESTS)[number];

/** The built-in designs: the positions of the 2026 discussion (docs/facts.md#design-positions) and what upstream queued. */
export const BUILTIN_DESIGNS: readonly Design[] = [
  {
    name: "fpstate",
    description: "no regs[] copy: EGPRs stay in hardware while the guest FPU is loaded, in fpstate component 19 otherwise; KVM uses REX2 MOVs",
    source: "docs/facts.md#position-fpstate — Chang, 2025 APX series",
    egprHome: "fpstate",
    actions: [],
  },
  {
    name: "c-xfeatures",
    description: "regs[16..31], saved/restored in C next to kvm_load_xfeatures under host XCR0 when the CPU has APX",
    source: "docs/facts.md#position-c-xfeatures — Paolo, first proposal (Chang's objection: the MSR-immediate fastpath runs first)",
    egprHome: "regs",
    actions: [
      { anchor: "pre-guest-xfeatures", op: "load-egprs", when: "cpu-apx" },
      { anchor: "post-host-xfeatures", op: "store-egprs", when: "cpu-apx" },
    ],
  },
  {
    name: "early-xcr0",
    description: "load an early XCR0 = guest|APX, switch EGPRs, then the real guest XCR0; the reverse on exit",
    source: "docs/facts.md#position-early-xcr0 — Paolo, second proposal (Sean: real XCR0 only after the EGPR accesses)",
    egprHome: "regs",
    actions: [
      { anchor: "guest-xfeatures", op: "xsetbv", xcr0: "early", when: "cpu-apx" },
      { anchor: "guest-xfeatures", op: "load-egprs", when: "cpu-apx" },
      { anchor: "guest-xfeatures", op: "xsetbv", xcr0: "guest" },
      { anchor: "host-xfeatures", op: "xsetbv", xcr0: "early", when: "cpu-apx" },
      { anchor: "host-xfeatures", op: "store-egprs", when: "cpu-apx" },
      { anchor: "host-xfeatures", op: "xsetbv", xcr0: "host" },
    ],
  },
  {
    name: "early-xcr0-misordered",
    description: "early-xcr0 with the real XCR0 loaded before the EGPR accesses (load after guest XCR0, store before the early XCR0)",
    source: "docs/facts.md#position-early-xcr0 — the ordering Sean warned about",
    egprHome: "regs",
    actions: [
      { anchor: "guest-xfeatures", op: "xsetbv", xcr0: "early", when: "cpu-apx" },
      { anchor: "guest-xfeatures", op: "xsetbv", xcr0: "guest" },
      { anchor: "guest-xfeatures", op: "load-egprs", when: "cpu-apx" },
      { anchor: "host-xfeatures", op: "store-egprs", when: "cpu-apx" },
      { anchor: "host-xfeatures", op: "xsetbv", xcr0: "early", when: "cpu-apx" },
      { anchor: "host-xfeatures", op: "xsetbv", xcr0: "host" },
    ],
  },
  {
    name: "asm-conditional",
    description: "switch R16–R31 in the vendor run asm only when guest XCR0.APX=1 (store + clear after exit)",
    source: "docs/facts.md#position-asm-conditional — Sean; Intel's development tree",
    egprHome: "regs",
    actions: [
      { anchor: "asm-before-vmenter", op: "load-egprs", when: "guest-xcr0-apx" },
      { anchor: "asm-after-vmexit", op: "store-egprs", when: "guest-xcr0-apx" },
      { anchor: "asm-after-vmexit", op: "clear-egprs", when: "guest-xcr0-apx" },
    ],
  },
  {
    name: "asm-unconditional",
    description: "PUSH2/POP2 in the vendor run asm whenever the CPU has APX, whatever the guest XCR0",
    source: "docs/facts.md#position-asm-unconditional — measured by Chang (<1%); Andrew Cooper: #UD with an APX-off guest",
    egprHome: "regs",
    actions: [
      { anchor: "asm-before-vmenter", op: "load-egprs", via: "push2pop2", when: "cpu-apx" },
      { anchor: "asm-after-vmexit", op: "store-egprs", via: "push2pop2", when: "cpu-apx" },
    ],
  },
  {
    name: "early-xcr0-asm",
    description: "early-xcr0 for a -mapxf host: C loads the early XCR0 (guest|APX); the entry asm loads R16–R31 and then the guest XCR0 (before the GPR load: XSETBV uses RAX/RCX/RDX); the exit asm loads the early XCR0 back, stores and clears R16–R31; C then loads the host XCR0",
    source: "docs/facts.md#position-early-xcr0 — the variant a -mapxf kernel needs (docs/facts.md#host-kernel-apx): no C code between the two XSETBVs",
    egprHome: "regs",
    actions: [
      { anchor: "guest-xfeatures", op: "xsetbv", xcr0: "early", when: "cpu-apx" },
      { anchor: "asm-entry", op: "load-egprs", when: "cpu-apx" },
      { anchor: "asm-entry", op: "xsetbv", xcr0: "guest" },
      { anchor: "asm-exit", op: "xsetbv", xcr0: "early", when: "cpu-apx" },
      { anchor: "asm-exit", op: "store-egprs", when: "cpu-apx" },
      { anchor: "asm-exit", op: "clear-egprs", when: "cpu-apx" },
      { anchor: "host-xfeatures", op: "xsetbv", xcr0: "host" },
    ],
  },
  {
    name: "upstream-v4",
    description: "the series upstream queued: an entry flag (CPU has APX and guest XCR0.APX) computed before entry; the asm loads R16–R31 before the guest SPEC_CTRL write and stores + clears them after the RSB fill and host SPEC_CTRL restore, on VM-Fail too",
    source: "docs/facts.md#upstream-choice — KVM APX series v4 (Intel's apx tree, vmenter.S)",
    egprHome: "regs",
    actions: [
      { anchor: "vcpu-run", op: "latch", flag: "egpr-switch", when: ["cpu-apx", "guest-xcr0-apx"] },
      { anchor: "asm-entry", op: "load-egprs", when: "flag:egpr-switch" },
      { anchor: "asm-exit", op: "store-egprs", when: "flag:egpr-switch" },
      { anchor: "asm-exit", op: "clear-egprs", when: "flag:egpr-switch" },
    ],
  },
  {
    name: "hw-xcr0-switch",
    description: "VM-entry/exit swap XCR0 in hardware (like SEV-ES); EGPRs moved in asm unconditionally under host XCR0",
    source: "docs/facts.md#position-hw-xcr0-switch — requested from Intel and AMD; not in first APX hardware",
    egprHome: "regs",
    hardwareXcr0Switch: true,
    actions: [
      { anchor: "asm-before-vmenter", op: "load-egprs", when: "cpu-apx" },
      { anchor: "asm-after-vmexit", op: "store-egprs", when: "cpu-apx" },
    ],
  },
];

export function builtinDesign(name: string): Design | undefined {
  return BUILTIN_DESIGNS.find((d) => d.name === name);
}

const byAnchor = new WeakMap<Design, Map<Anchor, readonly DesignAction[]>>();
const NONE: readonly DesignAction[] = Object.freeze([]);

/** Actions of `design` at `anchor`, in file order (cached per design object; designs are immutable data). */
export function actionsAt(design: Design, anchor: Anchor): readonly DesignAction[] {
  let m = byAnchor.get(design);
  if (!m) {
    m = new Map();
    for (const a of design.actions) m.set(a.anchor, [...(m.get(a.anchor) ?? []), a]);
    byAnchor.set(design, m);
  }
  return m.get(anchor) ?? NONE;
}
