import type { CpuidEntry } from "@kvmx/core";
import type { HostDescription } from "../host/host-description.js";
import type { PendingModelBug } from "./host-quirks.js";

const PKRU = 0x200n;
const u64 = (s: string | undefined): bigint | undefined => (s !== undefined && /^0x[0-9a-f]+$/.test(s) ? BigInt(s) : undefined);

/**
 * Model bugs the lab found in code this package does not own (core's vCPU operations), each named
 * with the kernel function the model gets wrong and where the fix belongs. A difference one of them
 * explains is reported as a model bug awaiting its fix — never as a host quirk — and the transcript
 * replay tests assert each is still observed, so an entry goes away with its fix.
 */
export const PENDING_MODEL_BUGS: readonly PendingModelBug[] = [
  {
    name: "host-without-xsave",
    differs:
      "On a host without XSAVE, KVM_GET_XCRS reports no XCR (nr_xcrs 0), KVM_SET_XCRS is EINVAL, and KVM_GET/SET_XSAVE carry the FXSAVE area as it is (MXCSR_MASK and the legacy fields included, checked against the host's MXCSR mask) with XSTATE_BV = FP|SSE; the model's vCPU operations always behave as on an XSAVE host",
    kernelFunction: "kvm_vcpu_ioctl_x86_get/set_xcrs (!boot_cpu_has(X86_FEATURE_XSAVE)), fpu_copy_guest_fpstate_to_uabi and fpu_copy_uabi_to_guest_fpstate (their non-XSAVE branches)",
    fixIn: "packages/core/src/kvm/uapi-ops.ts (kvmGetXcrs, kvmSetXcrs, kvmGetXsave, kvmSetXsave)",
    appliesTo: (_h, f) => !hostHasXsave(f.supportedCpuid),
    explains: (c) =>
      c.step.kind === "set-xcrs" ||
      c.step.kind === "get-xcrs" ||
      c.step.kind === "set-xsave" ||
      c.step.kind === "get-xsave" ||
      c.step.kind === "get-xsave2" ||
      (c.step.kind === "get-into" && c.step.ioctl === "KVM_GET_XCRS") ||
      (c.step.kind === "run" && c.key === "xcr0"),
  },
];

/** CPUID.1:ECX.XSAVE of what the kernel supports: false for a host CPU without XSAVE. */
export function hostHasXsave(supportedCpuid: readonly CpuidEntry[]): boolean {
  return ((supportedCpuid.find((e) => e.function === 1)?.ecx ?? 0) >>> 26 & 1) === 1;
}

/** The pending model bugs that can show against this kernel. */
export function pendingBugsFor(host: HostDescription, facts: { readonly supportedCpuid: readonly CpuidEntry[] }): readonly PendingModelBug[] {
  return PENDING_MODEL_BUGS.filter((b) => !b.appliesTo || b.appliesTo(host, facts));
}
