/** VMX basic exit reasons the model produces and handles (SDM appendix C; docs/facts.md#vmx-exit-info, #vmx-fastpath). */
export const EXIT_REASON = {
  EXCEPTION_NMI: 0,
  EXTERNAL_INTERRUPT: 1,
  CPUID: 10,
  HLT: 12,
  DR_ACCESS: 29,
  IO_INSTRUCTION: 30,
  MSR_READ: 31,
  MSR_WRITE: 32,
  PREEMPTION_TIMER: 52,
  XSETBV: 55,
  MSR_READ_IMM: 84,
  MSR_WRITE_IMM: 85,
} as const;
export type ExitReasonName = keyof typeof EXIT_REASON;

export function exitReasonName(n: number): string {
  for (const [k, v] of Object.entries(EXIT_REASON)) if (v === n) return k;
  return `EXIT_REASON_${n}`;
}

/** VM_EXIT_INTR_INFO for an NMI: vector 2, type 2 (NMI), valid (bit 31). */
export const INTR_INFO_NMI = (1n << 31n) | (2n << 8n) | 2n;
/** VM_EXIT_INTR_INFO for a machine check: vector 18, type 3 (hardware exception), valid (bit 31). */
export const INTR_INFO_MC = (1n << 31n) | (3n << 8n) | 18n;
