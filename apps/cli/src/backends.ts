/**
 * The CLI's backend registry: name → vendor ops. Only the CLI wires concrete backends;
 * core, uapi and check receive the backend they run on. Add a backend by adding it to BACKENDS.
 */
import type { VendorOps } from "@kvmx/core";
import { tdxBackend, vmxBackend, vmxNestedBackend } from "@kvmx/vmx";
import { sevEsBackend, svmApxBackend, svmBackend } from "@kvmx/svm";

export const BACKENDS: readonly VendorOps[] = [vmxBackend, vmxNestedBackend, tdxBackend, svmBackend, svmApxBackend, sevEsBackend];

/**
 * What `kvmx check` runs when no --backend is given: every backend of real hardware. `svm-apx`
 * (APX on SVM) describes hardware that does not exist, so it runs only when named.
 */
export const DEFAULT_CHECK_BACKENDS: readonly string[] = BACKENDS.filter((b) => b !== svmApxBackend).map((b) => b.name);

export function backendByName(name: string): VendorOps | undefined {
  return BACKENDS.find((b) => b.name === name);
}

export const BACKEND_NAMES = (): string[] => BACKENDS.map((b) => b.name);
