/**
 * The VMCS fields the VMX backend uses (SDM appendix B encodings), kept in VcpuState.vendor by name.
 * EXTENDED_INSTRUCTION_INFO (0x2406) is the 64-bit APX field with 5-bit register numbers (FACTS.md §1).
 */
export const VMCS = {
  GUEST_CR0: 0x6800,
  GUEST_CR3: 0x6802,
  GUEST_CR4: 0x6804,
  GUEST_RSP: 0x681c,
  GUEST_RIP: 0x681e,
  GUEST_RFLAGS: 0x6820,
  GUEST_PDPTR0: 0x280a,
  GUEST_PDPTR1: 0x280c,
  GUEST_PDPTR2: 0x280e,
  GUEST_PDPTR3: 0x2810,
  HOST_RSP: 0x6c14,
  VM_EXIT_REASON: 0x4402,
  VM_EXIT_INTR_INFO: 0x4404,
  VM_EXIT_INSTRUCTION_LEN: 0x440c,
  VMX_INSTRUCTION_INFO: 0x440e,
  EXIT_QUALIFICATION: 0x6400,
  EXTENDED_INSTRUCTION_INFO: 0x2406,
  CR0_GUEST_HOST_MASK: 0x6000,
  CR4_GUEST_HOST_MASK: 0x6002,
} as const;
export type VmcsField = keyof typeof VMCS;

import type { VcpuState } from "@kvmx/core";

/** vmcs_read: a field never written reads as 0 (the model's VMCS is zero-initialised). */
export const vmcsRead = (v: VcpuState, f: VmcsField): bigint => v.vendor[f] ?? 0n;
export const vmcsWrite = (v: VcpuState, f: VmcsField, value: bigint): void => {
  v.vendor[f] = BigInt.asUintN(64, value);
};
