import { describe, expect, test } from "vitest";
import { createVcpu } from "../../src/kvm/vcpu.js";
import { kvmEmulateXsetbv, kvmSetXcr, resetXcr, vcpuGuestSupportedXcr0 } from "../../src/kvm/xcr.js";
import { withOptions } from "../../src/model-options.js";
import { XFEATURE_MASK } from "../../src/cpu/xfeatures.js";
import { markAvailable } from "../../src/kvm/register-cache.js";

const SUPPORTED = 0xe02e7n | XFEATURE_MASK.APX;
const vcpu = (guestMask = SUPPORTED) => createVcpu({ id: 0, design: "t", egprsInRegs: true, fpstateHasApx: false, cpuid: { xcr0Mask: guestMask, apx: true } });

describe("XCR0 (docs/facts.md#xcr0-rules)", () => {
  test("guest-supported XCR0 = guest CPUID 0xD.0 ∩ KVM-supported", () => {
    expect(vcpuGuestSupportedXcr0(vcpu(0x7n | XFEATURE_MASK.APX), 0x3n)).toBe(0x3n);
  });

  test("__kvm_set_xcr: first failed rule in order, XCR0 unchanged on failure", () => {
    const v = vcpu(0x7n);
    expect(kvmSetXcr(v, SUPPORTED, 1, 3n)).toBe("index-not-zero");
    expect(kvmSetXcr(v, SUPPORTED, 0, 6n)).toBe("fp-clear");
    expect(kvmSetXcr(v, SUPPORTED, 0, 5n)).toBe("ymm-without-sse");
    expect(kvmSetXcr(v, SUPPORTED, 0, 3n | XFEATURE_MASK.APX)).toBe("unsupported-bit"); // guest CPUID lacks APX
    expect(v.xcr0).toBe(1n);
    expect(kvmSetXcr(v, SUPPORTED, 0, 7n)).toBeUndefined();
    expect(v.xcr0).toBe(7n);
  });

  test("XSETBV emulation reads ECX and EDX:EAX from regs[]; CPL > 0 is #GP", () => {
    const v = vcpu();
    v.regs.set(1, 0n);
    v.regs.set(0, 0xe02e7n);
    v.regs.set(2, 0n);
    const ctx = { vcpu: v, guestTag: 16, warn: () => undefined, cacheReg: (r: number) => markAvailable(v, r) };
    expect(kvmEmulateXsetbv(ctx, SUPPORTED, 3).kind).toBe("gp");
    expect(kvmEmulateXsetbv(ctx, SUPPORTED, 0)).toEqual({ kind: "ok", value: 0xe02e7n });
    expect(v.xcr0).toBe(0xe02e7n);
  });

  test("RESET: XCR0 = FP and EGPRs per egprResetValue; INIT keeps XCR0", () => {
    const v = vcpu();
    v.xcr0 = 0xe02e7n;
    v.regs.set(20, 5n);
    resetXcr(v, "init", withOptions());
    expect(v.xcr0).toBe(0xe02e7n);
    resetXcr(v, "reset", withOptions({ egprResetValue: "unchanged" }));
    expect([v.xcr0, v.regs.get(20)]).toEqual([1n, 5n]);
    resetXcr(v, "reset", withOptions());
    expect(v.regs.get(20)).toBe(0n);
  });
});
