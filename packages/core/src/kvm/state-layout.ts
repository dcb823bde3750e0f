/**
 * The packed state: one array of small integers per state of the model (SPIN's state vector). Values are ids into
 * the value table (cpu/values.ts), tags and flags are small integers, so copying a state is one
 * `slice` and its fingerprint is a hash over integers.
 *
 *   [ physical CPU | machine header | vCPU 0 | vCPU 1 | … ]
 *
 * The CPU block is cpu/physical-cpu.ts CPU_FIELDS; the header and the fixed part of a vCPU block are
 * the tables below; a vCPU block ends with the MSRs and vendor fields its machine declares.
 *
 * Every slot has a kind, which is all the fingerprint (fingerprint.ts) needs to know about it:
 *   control  compared exactly;
 *   value    a 64-bit register value — data: compared for equality only, so values from the
 *            checker's data alphabet are renamed by first occurrence (docs/model.md#data-independence);
 *   value1   a value slot that may be absent (id + 1; 0 = never written);
 *   tag      a provenance tag: only host-user / host-kernel / anything else is observable;
 *   flag     a counter of which only "zero or not" is observable (kernel WARNs);
 *   ignored  left out: no invariant can observe it across events (each entry says why).
 */
import { CPU_FIELDS } from "../cpu/physical-cpu.js";
import { NR_GPRS } from "../cpu/gpr.js";

export const SlotKind = { control: 0, value: 1, value1: 2, tag: 3, flag: 4, ignored: 5 } as const;
export type SlotKind = (typeof SlotKind)[keyof typeof SlotKind];

/** Register slots of a vCPU block: 32 GPRs plus PRE's RIP-in-regs[] slot. */
export const VCPU_REG_SLOTS = NR_GPRS + 1;

interface FieldSpec {
  readonly size: number;
  readonly kind: SlotKind;
  /** For ignored fields: why no invariant can observe the field across events. */
  readonly why?: string;
}

function place<const T extends Record<string, FieldSpec>>(start: number, fields: T): { readonly [K in keyof T]: number } & { SIZE: number } {
  const out: Record<string, number> = {};
  let at = start;
  for (const [name, f] of Object.entries(fields)) {
    out[name] = at;
    at += f.size;
  }
  out.SIZE = at;
  return out as { readonly [K in keyof T]: number } & { SIZE: number };
}

const C = SlotKind;

/** The machine header, after the CPU block. */
export const HEADER_FIELDS = {
  /** The guest's architectural R0..R31: what it last wrote or userspace set (invariants compare against it). */
  EXPECTED: { size: NR_GPRS, kind: C.value },
  /** The VMM task's FPU save area, R16..R31 part (saved at kvm_load_guest_fpu, restored at put). */
  USER_FP: { size: 16, kind: C.value },
  USER_FP_TAG: { size: 16, kind: C.tag },
  USER_XSTATE_BV: { size: 1, kind: C.control },
  /** -mapxf host: the task's R16..R31 saved at syscall entry. */
  ENTRY: { size: 16, kind: C.ignored, why: "written at every KVM_RUN's syscall entry before its exit reads it" },
  ENTRY_TAG: { size: 16, kind: C.ignored, why: "as ENTRY" },
  /** Index + 1 into the machine's NMI-site list of an armed NMI, 0 = none. */
  ARMED_NMI: { size: 1, kind: C.control },
  WARNINGS: { size: 1, kind: C.flag },
  CURRENT: { size: 1, kind: C.control },
  NVCPUS: { size: 1, kind: C.control },
  /** Index + 1 into the machine's IRQ-open / preemptible site lists of an armed host IRQ / schedule (features host-irq, sched-out). */
  ARMED_IRQ: { size: 1, kind: C.control },
  ARMED_SCHED: { size: 1, kind: C.control },
  /** The guest's architectural PKRU, DR6 and CR3 (value ids of model constants; features pkru, dr6, cr3). */
  EXPECTED_PKRU: { size: 1, kind: C.control },
  EXPECTED_DR6: { size: 1, kind: C.control },
  EXPECTED_CR3: { size: 1, kind: C.control },
} as const satisfies Record<string, FieldSpec>;
export const H = place(CPU_FIELDS.SIZE, HEADER_FIELDS);

/** The fixed part of a vCPU block (`struct kvm_vcpu_arch`, the parts kvmx models); offsets are relative. */
export const VCPU_FIELDS = {
  ID: { size: 1, kind: C.control },
  /** Index into the machine's design list. */
  DESIGN: { size: 1, kind: C.control },
  PROTECTED: { size: 1, kind: C.control },
  REGS: { size: VCPU_REG_SLOTS, kind: C.value },
  REGS_TAG: { size: VCPU_REG_SLOTS, kind: C.tag },
  RIP: {
    size: 1, kind: C.ignored,
    why: "every guest event starts its program at GUEST_CODE; RIP is only checked within one event (resume after an in-kernel exit)",
  },
  RFLAGS: { size: 1, kind: C.control },
  CR0: { size: 1, kind: C.control },
  CR3: { size: 1, kind: C.control },
  CR4: { size: 1, kind: C.control },
  PDPTR: { size: 4, kind: C.control },
  /** regs_avail and regs_dirty as 16-bit words each (bits 0..15, 16..31, 32..47): small integers. */
  AVAIL: { size: 3, kind: C.control },
  DIRTY: { size: 3, kind: C.control },
  XCR0: { size: 1, kind: C.control },
  XSS: { size: 1, kind: C.control },
  PKRU: { size: 1, kind: C.control },
  OSXSAVE: { size: 1, kind: C.control },
  LONG_MODE: { size: 1, kind: C.control },
  FP_FEATURES: { size: 1, kind: C.control },
  FP_XSTATE_BV: { size: 1, kind: C.control },
  FP_REST: {
    size: 1, kind: C.ignored,
    why: "the non-APX bytes userspace last set: reported by KVM_GET_XSAVE, compared by no invariant",
  },
  FP_EGPR: { size: 16, kind: C.value },
  FP_EGPR_TAG: { size: 16, kind: C.tag },
  /** vcpu->arch.dr6 and KVM_DEBUGREG_WONT_EXIT (feature dr6; docs/facts.md#dr6). */
  DR6: { size: 1, kind: C.control },
  DB_WONT_EXIT: { size: 1, kind: C.control },
  /** guest_fpu.fpstate->xfd and guest_fpu.xfd_err (feature xfd; docs/facts.md#xfd). */
  XFD: { size: 1, kind: C.control },
  XFD_ERR: { size: 1, kind: C.control },
  /** vcpu->guest_xcr0_loaded, the flag of KVM up to v4.x (docs/facts.md#xcr0-loaded-flag). */
  XCR0_LOADED: { size: 1, kind: C.control },
  /** 1 while the vendor state (VMCS/VMCB) was never written since KVM_CREATE_VCPU (feature vcpu-create). */
  VENDOR_UNINIT: { size: 1, kind: C.control },
} as const satisfies Record<string, FieldSpec>;
export const V = place(0, VCPU_FIELDS);

/** Kinds of the CPU block: only R16–R31 and the live XCR0/XSS/PKRU/XINUSE/XFD/XFD_ERR/DR6 outlive an event. */
function cpuKinds(): SlotKind[] {
  const k = new Array<SlotKind>(CPU_FIELDS.SIZE).fill(C.ignored);
  for (let r = 16; r < NR_GPRS; r++) {
    k[CPU_FIELDS.GPR + r] = C.value;
    k[CPU_FIELDS.TAG + r] = C.tag;
  }
  for (const f of [CPU_FIELDS.XCR0, CPU_FIELDS.XSS, CPU_FIELDS.PKRU, CPU_FIELDS.XINUSE, CPU_FIELDS.XFD, CPU_FIELDS.XFD_ERR, CPU_FIELDS.DR6]) k[f] = C.control;
  return k;
}

/**
 * Why the legacy physical GPRs, RIP, RFLAGS, mode, CPL, CR4.OSXSAVE, CR4.PKE and CR3 of the CPU are ignored: between
 * events the CPU runs the VMM task, every KVM_RUN loads the guest's legacy GPRs from regs[] and the
 * exit asm zeroes them, and the VMM's own legacy registers are not something KVM may break.
 */
export const CPU_IGNORED_WHY = "the VMM runs between events; KVM_RUN loads the guest's legacy GPRs from regs[] and zeroes them on exit";

function kindsOf(fields: Record<string, FieldSpec>): SlotKind[] {
  const out: SlotKind[] = [];
  for (const f of Object.values(fields)) for (let i = 0; i < f.size; i++) out.push(f.kind);
  return out;
}

/** Slot kinds of the CPU block followed by the header (offsets 0 .. H.SIZE). */
export const HEADER_KINDS: readonly SlotKind[] = [...cpuKinds(), ...kindsOf(HEADER_FIELDS)];
/** Slot kinds of the fixed part of a vCPU block (offsets 0 .. V.SIZE). */
export const VCPU_FIXED_KINDS: readonly SlotKind[] = kindsOf(VCPU_FIELDS);
