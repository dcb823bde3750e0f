/**
 * The VMCS fields the VMX backend uses (SDM appendix B encodings), kept in VcpuState.vendor by name.
 * EXTENDED_INSTRUCTION_INFO (0x2406) is the 64-bit APX field with 5-bit register numbers (docs/facts.md#vmx-exit-info).
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

import { defineVendorFields, type VcpuState, type VendorField } from "@kvmx/core";

/**
 * The VMCS fields as vendor state slots. GUEST_RSP holds the guest's RSP (a register value);
 * the exit information, GUEST_RIP and HOST_RSP are written on every VM-entry/exit before they are
 * read, so they mean nothing between events; the rest are controls.
 */
export const VMCS_FIELD = defineVendorFields({
  GUEST_CR0: "control",
  GUEST_CR3: "control",
  GUEST_CR4: "control",
  GUEST_RSP: "value",
  GUEST_RIP: "exit-info",
  GUEST_RFLAGS: "control",
  GUEST_PDPTR0: "control",
  GUEST_PDPTR1: "control",
  GUEST_PDPTR2: "control",
  GUEST_PDPTR3: "control",
  HOST_RSP: "exit-info",
  VM_EXIT_REASON: "exit-info",
  VM_EXIT_INTR_INFO: "exit-info",
  VM_EXIT_INSTRUCTION_LEN: "exit-info",
  VMX_INSTRUCTION_INFO: "exit-info",
  EXIT_QUALIFICATION: "exit-info",
  EXTENDED_INSTRUCTION_INFO: "exit-info",
  CR0_GUEST_HOST_MASK: "control",
  CR4_GUEST_HOST_MASK: "control",
} satisfies Record<VmcsField, "control" | "value" | "exit-info">);

/** Every VMCS field the VMX backend keeps (VendorOps.vendorFields). */
export const VMCS_FIELDS: readonly VendorField[] = Object.values(VMCS_FIELD);

/** vmcs_read: a field never written reads as 0 (the model's VMCS is zero-initialised). */
export const vmcsRead = (v: VcpuState, f: VmcsField): bigint => v.vendorGet(VMCS_FIELD[f]);
export const vmcsWrite = (v: VcpuState, f: VmcsField, value: bigint): void => v.vendorSet(VMCS_FIELD[f], value);
/** vmcs_read/vmcs_write on value ids (values.ts): no bigint on the hot path. */
export const vmcsReadId = (v: VcpuState, f: VmcsField): number => v.vendorId(VMCS_FIELD[f]);
export const vmcsWriteId = (v: VcpuState, f: VmcsField, id: number): void => v.vendorSetId(VMCS_FIELD[f], id);
