import { describe, expect } from "vitest";
import { fc, test } from "@fast-check/vitest";
import { RunCtx, createMachine } from "@kvmx/core";
import { VMCS01_FIELD, VMCS02_FIELD, loadedVmcs, vmcsRead, vmcsWrite, vmxLazyLoadSet, vmxNestedBackend, vmxSwitchVmcs } from "../src/index.js";

// PRE never kept EGPRs in regs[] (a u32 mask cannot name them), so PRE runs use the fpstate design.
const ctxFor = (pre: boolean) => {
  const m = createMachine({ backend: vmxNestedBackend, design: pre ? "fpstate" : "asm-conditional", host: { cpu: "dmr", kernelApx: false }, guest: { apx: true }, pre });
  return new RunCtx(m.config, m.initialState(), []);
};

describe("vmx_switch_vmcs (docs/facts.md#nested-switch-vmcs)", () => {
  test.prop([fc.bigInt({ min: 0n, max: (1n << 41n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 41n) - 1n })])(
    "POST: avail &= ~lazy set (eager bits kept), dirty = 0, never a lazy register left available",
    (availBits, dirtyBits) => {
      const ctx = ctxFor(false);
      const v = ctx.vcpu;
      const all = v.layout.allMask;
      v.regsAvail = (availBits | dirtyBits) & all;
      v.regsDirty = dirtyBits & all;
      const before = v.regsAvail;
      vmxSwitchVmcs(ctx, "vmcs02");
      const lazy = vmxLazyLoadSet(v.layout);
      expect(v.regsAvail).toBe(before & ~lazy);
      expect(v.regsDirty).toBe(0n);
      expect(ctx.violations).toEqual([]);
    },
  );

  test("PRE: avail = ~lazy set in a u32 (bits for registers that do not exist are set), dirty = 0", () => {
    const ctx = ctxFor(true);
    const v = ctx.vcpu;
    v.regsAvail = 0n;
    vmxSwitchVmcs(ctx, "vmcs02");
    expect(v.regsAvail).toBe(~vmxLazyLoadSet(v.layout) & 0xffff_ffffn);
    expect(v.regsAvail >> BigInt(v.layout.nrTotal)).not.toBe(0n);
    expect(v.regsDirty).toBe(0n);
    expect(ctx.violations).toEqual([]);
  });

  test("the loaded VMCS's fields swap: vmcs01's are parked while vmcs02 is current, and come back", () => {
    const ctx = ctxFor(false);
    const v = ctx.vcpu;
    vmcsWrite(v, "GUEST_RIP", 0x1111n);
    expect(loadedVmcs(v)).toBe("vmcs01");
    vmxSwitchVmcs(ctx, "vmcs02");
    expect(loadedVmcs(v)).toBe("vmcs02");
    expect(vmcsRead(v, "GUEST_RIP")).toBe(0n);
    expect(v.vendorGet(VMCS01_FIELD.GUEST_RIP)).toBe(0x1111n);
    vmcsWrite(v, "GUEST_RIP", 0x2222n);
    vmxSwitchVmcs(ctx, "vmcs01");
    expect(vmcsRead(v, "GUEST_RIP")).toBe(0x1111n);
    expect(v.vendorGet(VMCS02_FIELD.GUEST_RIP)).toBe(0x2222n);
  });

  test("a broken switch that keeps regs_avail is caught (cache-coherence): RIP would read vmcs01's value for L2", () => {
    const ctx = ctxFor(false);
    vmxSwitchVmcs(ctx, "vmcs02", "broken-keep-avail");
    expect(ctx.violations.map((x) => x.invariant)).toEqual(["cache-coherence"]);
  });
});
