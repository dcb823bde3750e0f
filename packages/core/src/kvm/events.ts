/**
 * The event alphabet (DESIGN.md "Events"): plain JSON data, so a checker counterexample is a
 * scenario file. u64 values are "0x…" strings. A guest event is one KVM_RUN round trip: userspace →
 * entry sequence → the guest executes its instruction(s) in non-root mode through the core executor
 * (guest faults stay in the guest) → exit → exit sequence → back to userspace (or re-entry on
 * REENTER_GUEST). Register names are GPR names ("rax", "r16" … "r31").
 */
import type { VendorEvent } from "./vendor-ops.js";

export type GprNameString = string;

export type KvmxEvent =
  /** Guest XSETBV with XCR0 = value (any value; invalid ones #GP in the guest). */
  | { readonly kind: "guest-xsetbv"; readonly value: string }
  /** Guest `mov reg, imm64`, then an OUT exit to userspace. */
  | { readonly kind: "guest-write"; readonly reg: GprNameString; readonly value: string }
  /** Guest reads `reg` (checked against what it last wrote), then an OUT exit to userspace. */
  | { readonly kind: "guest-read"; readonly reg: GprNameString }
  /**
   * Guest WRMSRNS imm (VMX exit 85, fastpath) writing `reg` to MSR `msr` (default IA32_TSC_DEADLINE
   * 0x6e0), then OUT. With `value`, the guest first does `mov reg, value` in the same run.
   */
  | { readonly kind: "guest-wrmsrns-imm"; readonly reg: GprNameString; readonly msr?: number; readonly value?: string }
  /** Guest RDMSR imm (VMX exit 84, full exit) reading MSR `msr` into `reg`. */
  | { readonly kind: "guest-rdmsr-imm"; readonly reg: GprNameString; readonly msr?: number }
  | { readonly kind: "guest-cpuid" }
  | { readonly kind: "guest-hlt" }
  | { readonly kind: "guest-io" }
  /** Arms an NMI that fires at the named NMI-open site of the next KVM_RUN (site id, or "guest"). */
  | { readonly kind: "nmi"; readonly site: string }
  /** A KVM_RUN (guest OUT exit) preempted in handle_exit: vcpu_put, another APX-using host task runs, vcpu_load. */
  | { readonly kind: "preempt" }
  /** A KVM_RUN whose VM-entry fails (VMX VM-Fail): no guest instruction runs; KVM reports KVM_EXIT_FAIL_ENTRY. */
  | { readonly kind: "vm-fail" }
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
  "migrate", "reset", "init",
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
