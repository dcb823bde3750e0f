/**
 * Why the guest stopped running, vendor-neutral. The guest site sets it; the backend's VM-exit site
 * encodes it into its exit fields (VMCS exit reason, qualification, instruction information; VMCB
 * exit code) and its handlers decode it back from there — so decoding bugs stay visible.
 */
export type GuestExit =
  | { readonly kind: "xsetbv"; readonly length: number }
  | { readonly kind: "cpuid"; readonly length: number }
  | { readonly kind: "hlt"; readonly length: number }
  | { readonly kind: "io"; readonly port: number; readonly length: number }
  | { readonly kind: "rdmsr-imm"; readonly msr: number; readonly reg: number; readonly length: number }
  | { readonly kind: "wrmsrns-imm"; readonly msr: number; readonly reg: number; readonly length: number }
  | { readonly kind: "wrmsr"; readonly length: number }
  /** An NMI arrived while the guest ran: NMI-exiting VM-exit, host handler via vmx_handle_nmi / STGI. */
  | { readonly kind: "nmi" }
  /** The preemption timer fired (VMX fastpath handles it). */
  | { readonly kind: "preemption-timer" }
  /** VM-entry failed (VMX VM-Fail): no guest instruction ran. */
  | { readonly kind: "vm-fail" }
  /** A MOV to or from DR`dr` while KVM intercepts DR accesses (feature dr6). */
  | { readonly kind: "dr-access"; readonly dr: number; readonly write: boolean; readonly length: number }
  /** A machine check while the guest ran (feature machine-check). */
  | { readonly kind: "mce" };

export type GuestExitKind = GuestExit["kind"];
