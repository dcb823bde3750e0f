/**
 * Nested VM-entry and VM-exit as L0 KVM performs them (nested.c; docs/facts.md#nested-vmx-apx,
 * #nested-switch-vmcs):
 *
 * nested_vmx_enter_non_root_mode (L1 VMLAUNCH/VMRESUME): vmx_switch_vmcs(vmcs02), then
 *   prepare_vmcs02 writes L2's RSP/RIP/RFLAGS from vmcs12 through the dirtying accessors, so they
 *   reach vmcs02 at the next VM-entry write-back.
 * nested_vmx_vmexit (an L2 exit L1 wants): sync_vmcs02_to_vmcs12 reads RSP, RIP, RFLAGS, CR0/3/4 and
 *   the PDPTRs through the register cache (cache_reg from vmcs02 — made current BEFORE the switch, or
 *   they would be read from vmcs01), prepare_vmcs12 copies
 *   the exit information (the extended instruction information at offset 336 only when L1's CPUID
 *   has APX), vmx_switch_vmcs(vmcs01), load_vmcs12_host_state writes L1's RSP/RIP.
 * GPRs (R0–R15 and, under a regs[] design, R16–R31) are not switched by VMX: L2 inherits L1's and
 * L1 sees L2's at the exit, so EGPRs simply follow the running design.
 */
import {
  RunCtx, markAvailable, pdptrRead, readCr0Bits, readCr3, readCr4Bits, ripRead, ripWrite, rspRead, rspWrite, val, valLow,
  type VcpuState, type VendorCtx, type VendorField,
} from "@kvmx/core";
import { EXIT_REASON } from "../exit-reasons.js";
import { VMCS_FIELD } from "../vmcs-fields.js";
import { vmxSwitchVmcs, type SwitchVmcsRegsVariant } from "./switch-vmcs.js";
import { VMCS12_FIELD as F12, isGuestMode, setGuestMode, vmcs12Read, vmcs12Write } from "./vmcs12.js";
import { ONE_ID } from "../value-ids.js";

const RSP = 4;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** VMX basic exit reasons for L1's VMX instructions (SDM appendix C). */
export const NESTED_EXIT_REASON = { VMLAUNCH: 20, VMRESUME: 24 } as const;

/**
 * nested_vmx_l1_wants_exit for the model's L1 (a KVM-like hypervisor): CPUID and XSETBV always exit
 * to L1; L1 sets HLT exiting, unconditional I/O exiting and intercepts the MSRs the guests touch.
 * NMIs, external interrupts and L0's preemption timer are L0's (nested_vmx_l0_wants_exit).
 */
export function l1WantsExit(reason: number): boolean {
  switch (reason) {
    case EXIT_REASON.CPUID:
    case EXIT_REASON.XSETBV:
    case EXIT_REASON.HLT:
    case EXIT_REASON.IO_INSTRUCTION:
    case EXIT_REASON.MSR_READ:
    case EXIT_REASON.MSR_WRITE:
    case EXIT_REASON.MSR_READ_IMM:
    case EXIT_REASON.MSR_WRITE_IMM:
      return true;
    default:
      return false;
  }
}

/** The guest's expected view follows an architectural level change: new RSP, and RIP if the guest runs again in this event. */
function retargetGuestView(ctx: VendorCtx, rip: bigint, rspId: number): void {
  ctx.st.expected.setId(RSP, rspId);
  if (ctx instanceof RunCtx) ctx.expectedGuestRip = rip;
}

const ALL = 0xffff_ffff_ffff_ffffn;
const VMCS12_GUEST_PDPTR: readonly VendorField[] = [F12.guest_pdptr0, F12.guest_pdptr1, F12.guest_pdptr2, F12.guest_pdptr3];

/** vmx_set_cr0/cr4 + nested_vmx_load_cr3 as far as the cache goes: value into vcpu->arch and the loaded VMCS, available. */
function loadCrs(v: VcpuState, cr0: VendorField, cr3: VendorField, cr4: VendorField): void {
  const cr0Id = v.vendorId(cr0);
  const cr3Id = v.vendorId(cr3);
  const cr4Id = v.vendorId(cr4);
  v.cr0 = val(cr0Id);
  v.cr3 = val(cr3Id);
  v.cr4 = val(cr4Id);
  v.vendorSetId(VMCS_FIELD.GUEST_CR0, cr0Id);
  v.vendorSetId(VMCS_FIELD.GUEST_CR3, cr3Id);
  v.vendorSetId(VMCS_FIELD.GUEST_CR4, cr4Id);
  markAvailable(v, v.layout.CR0);
  markAvailable(v, v.layout.CR3);
  markAvailable(v, v.layout.CR4);
}

export interface NestedVariant {
  /** How vmx_switch_vmcs resets the register cache (tests use the broken one). */
  readonly switchRegs?: SwitchVmcsRegsVariant;
}

/** nested_vmx_enter_non_root_mode: L1 → L2. */
export function nestedVmxEnterNonRootMode(ctx: VendorCtx, variant: NestedVariant = {}): void {
  const v = ctx.vcpu;
  vmxSwitchVmcs(ctx, "vmcs02", variant.switchRegs);
  // prepare_vmcs02: L2's CRs into vmcs02; RSP/RIP through kvm_rsp_write/kvm_rip_write — dirty,
  // written to vmcs02 by the next VM-entry write-back.
  loadCrs(v, F12.guest_cr0, F12.guest_cr3, F12.guest_cr4);
  const rspId = v.vendorId(F12.guest_rsp);
  const rsp = val(rspId);
  const rip = v.vendorGet(F12.guest_rip);
  rspWrite(ctx, rsp);
  ripWrite(ctx, rip);
  const rflags = v.vendorId(F12.guest_rflags);
  v.rflags = (valLow(rflags) & 2) !== 0 ? val(rflags) : val(rflags) | 2n; // RFLAGS bit 1 is fixed
  setGuestMode(v, true);
  v.vendorSetId(F12.launch_state, ONE_ID);
  retargetGuestView(ctx, rip, rspId);
  if (ctx.tracing) ctx.note(`nested VM-entry: L2 at RIP ${hex(rip)} RSP ${hex(rsp)} (dirty, for vmcs02)`);
}

/** nested_vmx_vmexit: L2 → L1, reflecting the exit vmcs02 holds. */
export function nestedVmxVmexit(ctx: VendorCtx, variant: NestedVariant = {}): void {
  const v = ctx.vcpu;
  // sync_vmcs02_to_vmcs12: read through the cache while vmcs02 is still loaded.
  vmcs12Write(v, "guest_rsp", rspRead(ctx));
  vmcs12Write(v, "guest_rip", ripRead(ctx));
  vmcs12Write(v, "guest_rflags", v.rflags);
  vmcs12Write(v, "guest_cr0", readCr0Bits(ctx, ALL));
  vmcs12Write(v, "guest_cr3", readCr3(ctx));
  vmcs12Write(v, "guest_cr4", readCr4Bits(ctx, ALL));
  for (let i = 0; i < 4; i++) v.vendorSet(VMCS12_GUEST_PDPTR[i]!, pdptrRead(ctx, i));
  // prepare_vmcs12: exit information.
  v.vendorSetId(F12.vm_exit_reason, v.vendorId(VMCS_FIELD.VM_EXIT_REASON));
  v.vendorSetId(F12.exit_qualification, v.vendorId(VMCS_FIELD.EXIT_QUALIFICATION));
  v.vendorSetId(F12.vm_exit_instruction_len, v.vendorId(VMCS_FIELD.VM_EXIT_INSTRUCTION_LEN));
  v.vendorSetId(F12.vmx_instruction_info, v.vendorId(VMCS_FIELD.VMX_INSTRUCTION_INFO));
  const apx = v.cpuid.apx;
  if (apx) v.vendorSetId(F12.extended_instruction_info, v.vendorId(VMCS_FIELD.EXTENDED_INSTRUCTION_INFO));
  vmxSwitchVmcs(ctx, "vmcs01", variant.switchRegs);
  // load_vmcs12_host_state: L1's CRs, RSP, RIP from vmcs12's host-state area.
  loadCrs(v, F12.host_cr0, F12.host_cr3, F12.host_cr4);
  const hostRspId = v.vendorId(F12.host_rsp);
  const hostRip = v.vendorGet(F12.host_rip);
  rspWrite(ctx, val(hostRspId));
  ripWrite(ctx, hostRip);
  setGuestMode(v, false);
  retargetGuestView(ctx, hostRip, hostRspId);
  if (ctx.tracing) ctx.note(
    `nested VM-exit to L1 (reason ${vmcs12Read(v, "vm_exit_reason")}); vmcs12 extended instruction info (offset 336) ${apx ? "copied" : "not copied: L1's CPUID lacks APX"}`,
  );
}

/** The vCPU runs L2 now (is_guest_mode). */
export const inL2 = (ctx: VendorCtx): boolean => isGuestMode(ctx.vcpu);
