/**
 * vmcs12: the VMCS L1 keeps for its L2, in L1's memory (struct vmcs12, nested.c). kvmx keeps the
 * fields nested VM-entry/exit move as vendor state slots named "vmcs12.<field>", with their offsets in
 * struct vmcs12 for reference. EXTENDED_INSTRUCTION_INFO sits at offset 336 and is copied on nested
 * VM-exit only when L1's CPUID has APX (docs/facts.md#nested-vmx-apx).
 */
import { defineVendorFields, type VcpuState, type VendorField, type VendorFieldKind } from "@kvmx/core";
import { ONE_ID } from "../value-ids.js";

/** struct vmcs12 offsets of the modelled fields (docs/facts.md#nested-vmx-apx fixes 336; the others are for display only). */
export const VMCS12_FIELDS = {
  launch_state: -1,
  guest_rsp: 0,
  guest_rip: 0,
  guest_rflags: 0,
  guest_cr0: 0,
  guest_cr3: 0,
  guest_cr4: 0,
  guest_pdptr0: 0,
  guest_pdptr1: 0,
  guest_pdptr2: 0,
  guest_pdptr3: 0,
  host_cr0: 0,
  host_cr3: 0,
  host_cr4: 0,
  host_rsp: 0,
  host_rip: 0,
  vm_exit_reason: 0,
  exit_qualification: 0,
  vm_exit_instruction_len: 0,
  vmx_instruction_info: 0,
  extended_instruction_info: 336,
} as const;
export type Vmcs12Field = keyof typeof VMCS12_FIELDS;

export const VMCS12_EXTENDED_INSTRUCTION_INFO_OFFSET = VMCS12_FIELDS.extended_instruction_info;

/**
 * What each vmcs12 field holds, for the checker's state fingerprint. L2's and L1's RSP are register
 * values; RFLAGS and the CRs are read back at the next nested VM-entry/exit (possibly in a later
 * event), so they are compared exactly; L2's and L1's RIP are read back too, but a RIP decides
 * nothing across events (core's vendor-fields.ts "rip"); the exit information is written by every
 * nested VM-exit and read by nothing afterwards in the model (L1 never looks), so it means nothing
 * between events.
 */
const VMCS12_KIND: Record<Vmcs12Field, VendorFieldKind> = {
  launch_state: "control",
  guest_rsp: "value",
  guest_rip: "rip",
  guest_rflags: "control",
  guest_cr0: "control",
  guest_cr3: "control",
  guest_cr4: "control",
  guest_pdptr0: "control",
  guest_pdptr1: "control",
  guest_pdptr2: "control",
  guest_pdptr3: "control",
  host_cr0: "control",
  host_cr3: "control",
  host_cr4: "control",
  host_rsp: "value",
  host_rip: "rip",
  vm_exit_reason: "exit-info",
  exit_qualification: "exit-info",
  vm_exit_instruction_len: "exit-info",
  vmx_instruction_info: "exit-info",
  extended_instruction_info: "exit-info",
};

const names = Object.keys(VMCS12_KIND) as Vmcs12Field[];
const declared = defineVendorFields(Object.fromEntries(names.map((f) => [`vmcs12.${f}`, VMCS12_KIND[f]])) as Record<string, VendorFieldKind>);

/** The vmcs12 fields' vendor field ids, by struct vmcs12 field name. */
export const VMCS12_FIELD: Readonly<Record<Vmcs12Field, VendorField>> = Object.fromEntries(names.map((f) => [f, declared[`vmcs12.${f}`]!])) as Record<Vmcs12Field, VendorField>;

/** Nested state of the vCPU itself: is_guest_mode (1 while L2 runs). */
export const NESTED_FIELD = defineVendorFields({ "nested.guest_mode": "control" });

export const vmcs12Read = (v: VcpuState, f: Vmcs12Field): bigint => v.vendorGet(VMCS12_FIELD[f]);
export const vmcs12Write = (v: VcpuState, f: Vmcs12Field, value: bigint): void => v.vendorSet(VMCS12_FIELD[f], value);

/** Where L1 put L2's code and stack, and its own VM-exit landing point (what L1 VMWRITEs before VMLAUNCH). */
export const L2_ENTRY = { rip: 0x20_0000n, rsp: 0x7fff_f000n, cr3: 0x2000n } as const;
export const L1_HOST_RIP = 0x10_8000n;
/** L1's control registers as the model's vCPUs start (VcpuState.initialise: long mode, CR4.OSXSAVE). */
export const L1_CRS = { cr0: 0x8005_0033n, cr3: 0x1000n, cr4: 0x40620n } as const;


/** Whether the vCPU currently runs L2 (is_guest_mode). */
export const isGuestMode = (v: VcpuState): boolean => v.vendorId(NESTED_FIELD["nested.guest_mode"]) === ONE_ID;
export const setGuestMode = (v: VcpuState, on: boolean): void => v.vendorSetId(NESTED_FIELD["nested.guest_mode"], on ? ONE_ID : 0);
