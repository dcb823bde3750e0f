import { KvmxError, type ErrorCategory } from "@kvmx/core";

/**
 * A lab failure a user can act on. `fix` is the one line that says what to do (the CLI prints
 * message and fix together and exits 69 for "unavailable": no QEMU, a failed install, a lab that
 * did not boot).
 */
export class LabError extends KvmxError {
  constructor(
    readonly problem: string,
    readonly fix: string | undefined,
    category: ErrorCategory = "unavailable",
    options?: { cause?: unknown },
  ) {
    super(fix ? `${problem}; ${fix}` : problem, category, options);
  }
}
