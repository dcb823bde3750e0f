/**
 * vmcs12: the VMCS L1 keeps for its L2, in L1's memory (struct vmcs12, nested.c). kvmx keeps the
 * fields nested VM-entry/exit move, by name, under "vmcs12.<field>" keys of the vendor state, with
 * their offsets in struct vmcs12 for reference. EXTENDED_INSTRUCTION_INFO sits at offset 336 and is
 * copied on nested VM-exit only when L1's CPUID has APX (FACTS.md §1 nVMX).
 */
import type { VcpuState } from "@kvmx/core";

/** struct vmcs12 offsets of the modelled fields (FACTS.md §1 fixes 336; the others are for display only). */
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

type Vendor = Pick<VcpuState, "vendor">;
export const vmcs12Read = (v: Vendor, f: Vmcs12Field): bigint => v.vendor[`vmcs12.${f}`] ?? 0n;
export const vmcs12Write = (v: Vendor, f: Vmcs12Field, value: bigint): void => {
  v.vendor[`vmcs12.${f}`] = BigInt.asUintN(64, value);
};

/** Where L1 put L2's code and stack, and its own VM-exit landing point (what L1 VMWRITEs before VMLAUNCH). */
export const L2_ENTRY = { rip: 0x20_0000n, rsp: 0x7fff_f000n, cr3: 0x2000n } as const;
export const L1_HOST_RIP = 0x10_8000n;
/** L1's control registers as the model's vCPUs start (vcpu.ts createVcpu: long mode, CR4.OSXSAVE). */
export const L1_CRS = { cr0: 0x8005_0033n, cr3: 0x1000n, cr4: 0x40620n } as const;

/** Whether the vCPU currently runs L2 (is_guest_mode). */
export const isGuestMode = (v: Vendor): boolean => (v.vendor["nested.guest_mode"] ?? 0n) === 1n;
export const setGuestMode = (v: Vendor, on: boolean): void => {
  v.vendor["nested.guest_mode"] = on ? 1n : 0n;
};
