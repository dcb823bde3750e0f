/**
 * vmx_cache_reg and the VMX lazy set (docs/facts.md#vmx-cache-reg): which registers live in the VMCS until read, and
 * how nVMX's vmx_switch_vmcs forgets them (POST `&=`, PRE `=`).
 */
import { guestOwnedBits, markAvailable, regBit, type RegLayout, type VcpuState, type VendorCtx, Tag } from "@kvmx/core";
import { vmcsRead } from "./vmcs-fields.js";

/** VMX_REGS_LAZY_LOAD_SET: {RIP, RSP, RFLAGS, PDPTR, SEGMENTS, CR0, CR3, CR4, EXIT_INFO_1, EXIT_INFO_2}. */
export function vmxLazyLoadSet(l: RegLayout): bigint {
  return (
    regBit(l.RIP) | regBit(4) | regBit(l.RFLAGS) | regBit(l.PDPTR) | regBit(l.SEGMENTS) | regBit(l.CR0) |
    regBit(l.CR3) | regBit(l.CR4) | regBit(l.EXIT_INFO_1) | regBit(l.EXIT_INFO_2)
  );
}

/** The model's VMX runs with EPT and without CR3-load exiting (so CR3 comes from GUEST_CR3). */
export const VMX_EPT = true;

/**
 * vmx_cache_reg: marks the register available FIRST, then loads it from the VMCS. CR0/CR4 merge only
 * the guest-owned bits. Anything else is a bug in the caller: a WARN, not an exception.
 */
export function vmxCacheReg(ctx: VendorCtx, reg: number): void {
  const v = ctx.vcpu;
  const l = v.layout;
  markAvailable(v, reg);
  if (reg === 4) {
    v.regs.set(4, vmcsRead(v, "GUEST_RSP"), Tag.guest(v.id));
  } else if (reg === l.RIP) {
    if (l.pre) v.regs.set(l.RIP, vmcsRead(v, "GUEST_RIP"));
    else v.rip = vmcsRead(v, "GUEST_RIP");
  } else if (reg === l.PDPTR) {
    if (VMX_EPT) {
      v.setPdptr(0, vmcsRead(v, "GUEST_PDPTR0"));
      v.setPdptr(1, vmcsRead(v, "GUEST_PDPTR1"));
      v.setPdptr(2, vmcsRead(v, "GUEST_PDPTR2"));
      v.setPdptr(3, vmcsRead(v, "GUEST_PDPTR3"));
    }
  } else if (reg === l.CR0) {
    const owned = guestOwnedBits(v, "cr0");
    v.cr0 = (v.cr0 & ~owned) | (vmcsRead(v, "GUEST_CR0") & owned);
  } else if (reg === l.CR3) {
    if (VMX_EPT) v.cr3 = vmcsRead(v, "GUEST_CR3");
  } else if (reg === l.CR4) {
    const owned = guestOwnedBits(v, "cr4");
    v.cr4 = (v.cr4 & ~owned) | (vmcsRead(v, "GUEST_CR4") & owned);
  } else {
    ctx.warn(`vmx_cache_reg: unexpected register ${l.name(reg)}`);
  }
}

/**
 * vmx_switch_vmcs (nVMX) register-cache part: POST `avail &= ~lazy`, PRE `avail = ~lazy` (which sets
 * bits for registers that do not exist — harmless as eager bits are never cleared); dirty = 0.
 */
export function vmxSwitchVmcsRegs(v: VcpuState): void {
  const lazy = vmxLazyLoadSet(v.layout);
  v.regsAvail = v.layout.pre ? ~lazy & 0xffff_ffffn : v.regsAvail & ~lazy;
  v.regsDirty = 0n;
}
