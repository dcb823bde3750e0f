/** KVM_EXIT_* values of kvm_run.exit_reason (include/uapi/linux/kvm.h). */
export const KVM_EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  IOAPIC_EOI: 26,
  HYPERV: 27,
  X86_RDMSR: 29,
  X86_WRMSR: 30,
  DIRTY_RING_FULL: 31,
  AP_RESET_HOLD: 32,
  X86_BUS_LOCK: 33,
  XEN: 34,
  NOTIFY: 37,
} as const;
export type KvmExitName = keyof typeof KVM_EXIT;

const EXIT_NAMES = new Map<number, string>(Object.entries(KVM_EXIT).map(([k, v]) => [v, k]));

/** "KVM_EXIT_IO" for 2; "KVM_EXIT_<n>" for a reason this table does not name. */
export function exitReasonName(reason: number): string {
  return `KVM_EXIT_${EXIT_NAMES.get(reason) ?? String(reason)}`;
}

/** kvm_run.io.direction */
export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

/** kvm_run.internal.suberror for KVM_EXIT_INTERNAL_ERROR */
export const KVM_INTERNAL_ERROR = {
  EMULATION: 1,
  SIMUL_EX: 2,
  DELIVERY_EV: 3,
  UNEXPECTED_EXIT_REASON: 4,
} as const;
