import { describe, expect, test } from "vitest";
import { createVcpu, isAvailable, regBit, ripRead, rspRead, readCr0Bits, maskNames, type VendorCtx, type RegCacheCtx } from "@kvmx/core";
import { vmxCacheReg, vmxLazyLoadSet, vmxSwitchVmcsRegs } from "../src/vmx-cache-reg.js";
import { VMCS_FIELDS, vmcsWrite } from "../src/vmcs-fields.js";

function setup(pre = false) {
  const v = createVcpu({ id: 0, design: "t", pre, egprsInRegs: true, fpstateHasApx: false, cpuid: { xcr0Mask: 3n, apx: true }, vendorFields: VMCS_FIELDS });
  const warnings: string[] = [];
  const order: string[] = [];
  const ctx = { vcpu: v, guestTag: 16, warn: (m: string) => warnings.push(m) } as unknown as VendorCtx & RegCacheCtx;
  (ctx as { cacheReg: (r: number) => void }).cacheReg = (r) => {
    order.push(`avail-before=${isAvailable(v, r)}`);
    vmxCacheReg(ctx, r);
  };
  return { v, ctx, warnings, order };
}

describe("VMX register cache (docs/facts.md#vmx-cache-reg)", () => {
  test("the lazy set is exactly {RIP, RSP, RFLAGS, PDPTR, SEGMENTS, CR0, CR3, CR4, EXIT_INFO_1, EXIT_INFO_2}", () => {
    const { v } = setup();
    expect(maskNames(v.layout, vmxLazyLoadSet(v.layout)).sort()).toEqual(
      ["VCPU_REG_RSP", "VCPU_REG_RIP", "VCPU_REG_PDPTR", "VCPU_REG_CR0", "VCPU_REG_CR3", "VCPU_REG_CR4", "VCPU_REG_RFLAGS", "VCPU_REG_SEGMENTS", "VCPU_REG_EXIT_INFO_1", "VCPU_REG_EXIT_INFO_2"].sort(),
    );
    const pre = setup(true).v;
    expect(maskNames(pre.layout, vmxLazyLoadSet(pre.layout))).toContain("VCPU_EXREG_PDPTR");
  });

  test("vmx_cache_reg marks available first, then loads RSP/RIP from the VMCS", () => {
    const { v, ctx } = setup();
    vmcsWrite(v, "GUEST_RSP", 0x8000n);
    vmcsWrite(v, "GUEST_RIP", 0x1000n);
    v.regsAvail &= ~vmxLazyLoadSet(v.layout);
    v.regsDirty = 0n;
    expect(rspRead(ctx)).toBe(0x8000n);
    expect(ripRead(ctx)).toBe(0x1000n);
    expect(isAvailable(v, 4) && isAvailable(v, v.layout.RIP)).toBe(true);
  });

  test("CR0 merges only guest-owned bits from GUEST_CR0 (the model's guests own none); unknown registers WARN", () => {
    const { v, ctx, warnings, order } = setup();
    v.cr0 = 0x8000_0031n;
    vmcsWrite(v, "GUEST_CR0", 0x8n | 0x4n);
    v.regsAvail &= ~regBit(v.layout.CR0);
    // kvm_read_cr0_bits asks cache_reg only for guest-owned bits: none, so the cache answers.
    expect(readCr0Bits(ctx, 0xfn)).toBe(0x1n);
    expect(order).toEqual([]);
    // cache_reg(CR0) itself marks available first and takes no bit the guest does not own.
    ctx.cacheReg(v.layout.CR0);
    expect(order).toEqual(["avail-before=false"]);
    expect(isAvailable(v, v.layout.CR0)).toBe(true);
    expect(v.cr0).toBe(0x8000_0031n); // neither TS nor EM from the VMCS
    vmxCacheReg(ctx, v.layout.RFLAGS);
    expect(warnings[0]).toMatch(/unexpected register VCPU_REG_RFLAGS/);
  });

  test("vmx_switch_vmcs: POST avail &= ~lazy keeps eager bits; PRE avail = ~lazy sets bits for registers that do not exist", () => {
    const post = setup().v;
    post.regsAvail = regBit(0) | regBit(4);
    vmxSwitchVmcsRegs(post);
    expect(post.regsAvail).toBe(regBit(0));
    expect(post.regsDirty).toBe(0n);
    const pre = setup(true).v;
    pre.regsAvail = regBit(0);
    vmxSwitchVmcsRegs(pre);
    expect(pre.regsAvail & regBit(1)).toBe(regBit(1)); // `=` made RCX "available" although nobody loaded it
    expect(pre.regsAvail & regBit(31)).toBe(regBit(31)); // a bit beyond the 25 PRE registers
    expect(pre.regsAvail & regBit(4)).toBe(0n);
  });

  // Needs a way to give a vCPU guest-owned CR0 bits: core's guestOwnedBits is 0 for every vCPU.
  test.todo("CR0 with TS guest-owned: readCr0Bits(0xf) takes TS from GUEST_CR0 and the rest from the cache (0x9)");
});
