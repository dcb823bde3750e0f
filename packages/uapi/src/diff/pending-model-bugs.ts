import type { CpuidEntry } from "@kvmx/core";
import type { HostDescription } from "../host/host-description.js";
import type { PendingModelBug } from "./host-quirks.js";

/**
 * Model bugs the lab found in code this package does not own (core's vCPU operations), each named
 * with the kernel function the model gets wrong and where the fix belongs. A difference one of them
 * explains is reported as a model bug awaiting its fix — never as a host quirk — and the transcript
 * replay tests assert each is still observed, so an entry goes away with its fix. None is pending now:
 * the three the lab found (MXCSR_MASK, the PKRU header bit, a host without XSAVE) are fixed in core.
 */
export const PENDING_MODEL_BUGS: readonly PendingModelBug[] = [];

/** The pending model bugs that can show against this kernel. */
export function pendingBugsFor(host: HostDescription, facts: { readonly supportedCpuid: readonly CpuidEntry[] }): readonly PendingModelBug[] {
  return PENDING_MODEL_BUGS.filter((b) => !b.appliesTo || b.appliesTo(host, facts));
}
