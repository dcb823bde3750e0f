/**
 * The event alphabet (docs/model.md#events): plain JSON data, so a checker counterexample is a
 * scenario file. u64 values are "0x…" strings. A guest event is one KVM_RUN round trip: userspace →
 * entry sequence → the guest executes its instruction(s) in non-root mode through the core executor
 * (guest faults stay in the guest) → exit → exit sequence → back to userspace (or re-entry on
 * REENTER_GUEST). Register names are GPR names ("rax", "r16" … "r31").
 */
import type { VendorEvent } from "./vendor-ops.js";

export type GprNameString = string;

/**
 * KVM_CAP_SYNC_REGS on one KVM_RUN (docs/facts.md#sync-regs): kvm_run->kvm_valid_regs and
 * kvm_dirty_regs (u64 "0x…"; bits outside REGS|SREGS|EVENTS fail KVM_RUN with -EINVAL) and the
 * kvm_run->s.regs fields userspace wrote (struct kvm_regs names; the rest are what KVM last stored).
 */
export interface SyncRegsRequest {
  readonly valid?: string;
  readonly dirty?: string;
  readonly regs?: Readonly<Record<string, string>>;
}
/** Fields every event that is one KVM_RUN may carry. */
type KvmRunFields = {
  readonly syncRegs?: SyncRegsRequest;
};

export type KvmxEvent =
  /** Guest XSETBV with XCR0 = value (any value; invalid ones #GP in the guest). */
  | ({ readonly kind: "guest-xsetbv"; readonly value: string } & KvmRunFields)
  /** Guest `mov reg, imm64`, then an OUT exit to userspace. */
  | ({ readonly kind: "guest-write"; readonly reg: GprNameString; readonly value: string } & KvmRunFields)
  /** Guest reads `reg` (checked against what it last wrote), then an OUT exit to userspace. */
  | ({ readonly kind: "guest-read"; readonly reg: GprNameString } & KvmRunFields)
  /**
   * Guest WRMSRNS imm (VMX exit 85, fastpath) writing `reg` to MSR `msr` (default IA32_TSC_DEADLINE
   * 0x6e0), then OUT. With `value`, the guest first does `mov reg, value` in the same run.
   */
  | ({ readonly kind: "guest-wrmsrns-imm"; readonly reg: GprNameString; readonly msr?: number; readonly value?: string } & KvmRunFields)
  /** Guest RDMSR imm (VMX exit 84, full exit) reading MSR `msr` into `reg`. */
  | ({ readonly kind: "guest-rdmsr-imm"; readonly reg: GprNameString; readonly msr?: number } & KvmRunFields)
  /** Guest CPUID of leaf EAX = `leaf`, sub-leaf ECX = `subleaf` (both default 0). */
  | ({ readonly kind: "guest-cpuid"; readonly leaf?: number; readonly subleaf?: number } & KvmRunFields)
  | ({ readonly kind: "guest-hlt" } & KvmRunFields)
  | ({ readonly kind: "guest-io" } & KvmRunFields)
  /**
   * Guest MOV to CR4 with `value`: CR4.OSXSAVE is not guest-owned, so the write exits and KVM's
   * kvm_set_cr4 takes it (#GP(0) for OSXSAVE without guest CPUID XSAVE). With CR4.OSXSAVE=0 KVM
   * skips kvm_load_xfeatures and a guest XSETBV raises #UD. Applied at the exit as a single step
   * (the core executor has no MOV-to-CR instruction); only CR4.OSXSAVE may change.
   */
  | { readonly kind: "guest-mov-cr4"; readonly value: string }
  /** Arms an NMI that fires at the named NMI-open site of the next KVM_RUN (site id, or "guest"). */
  | { readonly kind: "nmi"; readonly site: string }
  /** A KVM_RUN (guest OUT exit) preempted in handle_exit: vcpu_put, another APX-using host task runs, vcpu_load. */
  | ({ readonly kind: "preempt" } & KvmRunFields)
  /** A KVM_RUN whose VM-entry fails (VMX VM-Fail): no guest instruction runs; KVM reports KVM_EXIT_FAIL_ENTRY. */
  | ({ readonly kind: "vm-fail" } & KvmRunFields)
  | { readonly kind: "get-xsave" }
  /** KVM_SET_XSAVE with component 19 present (values R16..R31, missing entries 0) or absent (`apx` omitted). */
  | { readonly kind: "set-xsave"; readonly apx?: readonly string[]; readonly xstateBv?: string }
  | { readonly kind: "get-regs" }
  /** KVM_SET_REGS: the named legacy registers (others keep their current value). */
  | { readonly kind: "set-regs"; readonly regs: Readonly<Record<string, string>> }
  | { readonly kind: "set-xcrs"; readonly xcr0: string }
  /** GET state on the current vCPU, SET it on a new one (optionally under another design), continue there. */
  | { readonly kind: "migrate"; readonly design?: string }
  | { readonly kind: "reset" }
  | { readonly kind: "init" }
  | VendorEvent;

export const EVENT_KINDS = [
  "guest-xsetbv", "guest-write", "guest-read", "guest-wrmsrns-imm", "guest-rdmsr-imm", "guest-cpuid",
  "guest-hlt", "guest-io", "nmi", "preempt", "vm-fail", "get-xsave", "set-xsave", "get-regs", "set-regs", "set-xcrs",
  "migrate", "reset", "init", "guest-mov-cr4",
] as const;
export type CoreEventKind = (typeof EVENT_KINDS)[number];

/** One line for traces and the CLI, e.g. `guest-write r16=0x1111`. */
export function describeEvent(e: KvmxEvent): string {
  const x = e as Record<string, unknown>;
  const parts = Object.entries(x)
    .filter(([k]) => k !== "kind")
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(",")}]` : typeof v === "object" && v ? JSON.stringify(v) : String(v)}`);
  return [e.kind, ...parts].join(" ");
}
