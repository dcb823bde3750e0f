/**
 * The 32 general-purpose registers in hardware (ModRM/REX/REX2) order, which is also KVM's
 * `enum kvm_reg` order for the first 16 (docs/facts.md#kvm-reg-enum). R16–R31 are Intel APX's EGPRs.
 */
export const GPR_NAMES = [
  "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
  "r16", "r17", "r18", "r19", "r20", "r21", "r22", "r23",
  "r24", "r25", "r26", "r27", "r28", "r29", "r30", "r31",
] as const;
export type GprName = (typeof GPR_NAMES)[number];

export const NR_LEGACY_GPRS = 16;
export const NR_GPRS = 32;
/** Index of R16, the first extended GPR. */
export const EGPR_FIRST = 16;
export const isEgpr = (index: number): boolean => index >= EGPR_FIRST && index < NR_GPRS;

export function gprIndex(name: string): number | undefined {
  const i = (GPR_NAMES as readonly string[]).indexOf(name.toLowerCase());
  return i < 0 ? undefined : i;
}
