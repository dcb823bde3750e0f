/**
 * Vendor hooks receive core's VendorCtx; the x86.c emulation helpers (kvm_emulate_cpuid, the skip,
 * the MSR writers) take the full RunCtx, which is what the sequencer always passes. This checks it.
 */
import { ModelBugError, RunCtx, type VendorCtx } from "@kvmx/core";

export function runCtx(ctx: VendorCtx): RunCtx {
  if (ctx instanceof RunCtx) return ctx;
  throw new ModelBugError("an SVM hook ran outside core's RunCtx (the sequencer always passes one)");
}
