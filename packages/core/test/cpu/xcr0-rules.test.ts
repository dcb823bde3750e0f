import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  XCR0_RULES,
  archXsetbvCheck,
  cpuProfile,
  guestSupportedXcr0,
  kvmSetXcrCheck,
  kvmSupportedXcr0,
  validXcr0Values,
} from "../../src/index.js";

const dmr = cpuProfile("dmr");
const ALL = (1n << 20n) - 1n;

describe("XCR0 rules (docs/facts.md#xcr0-rules order)", () => {
  it.each([
    [1, 0x3n, "index-not-zero"],
    [0, 0x2n, "fp-clear"],
    [0, 0x5n, "ymm-without-sse"],
    [0, 0x1n | (1n << 40n), "unsupported-bit"],
    [0, 0xbn, "mpx-half"],
    [0, 0x27n, "avx512-incomplete"],
    [0, 0xe3n, "avx512-incomplete"],
    [0, 0x20003n, "amx-half"],
    [0, 0x8001bn, "mpx-with-apx"],
    [0, 0x2n | 0x4n, "fp-clear"],
  ])("XCR%s = 0x%s fails %s", (index, value, rule) => {
    expect(kvmSetXcrCheck(index, value, ALL)).toBe(rule);
  });
  it("accepts the values this machine's KVM accepts (0x1, 0x3, 0x7, 0xe7; docs/facts.md#kvm-pvm-host)", () => {
    const g = guestSupportedXcr0(cpuProfile("kvm-pvm").cpuid, kvmSupportedXcr0(cpuProfile("kvm-pvm"), "vmx"));
    expect(g).toBe(0xe7n);
    for (const v of [0x1n, 0x3n, 0x7n, 0xe7n]) expect(kvmSetXcrCheck(0, v, g)).toBeUndefined();
    for (const v of [0x0n, 0x2n, 0x5n, 0x27n, 0x8000en, 0x207n]) expect(kvmSetXcrCheck(0, v, g)).toBeDefined();
  });
  it("KVM always allows FP even when guest CPUID has no leaf 0xD; hardware needs CPUID", () => {
    expect(kvmSetXcrCheck(0, 0x1n, 0n)).toBeUndefined();
    expect(archXsetbvCheck(0, 0x1n, 0n)).toBe("unsupported-bit");
  });
  it("every rule name is reachable and described", () => {
    expect(XCR0_RULES.map((r) => r.name)).toHaveLength(8);
  });
  test.prop([fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })])("a valid value is exactly one that validXcr0Values lists", (v) => {
    const supported = dmr.supportedXcr0;
    const valid = validXcr0Values(supported);
    expect(valid.includes(v & ALL) && v >> 20n === 0n).toBe(archXsetbvCheck(0, v, supported) === undefined);
  });
});

describe("supported XCR0", () => {
  it("kvmSupportedXcr0: SVM drops APX and MPX, VMX keeps APX", () => {
    expect(kvmSupportedXcr0(dmr, "vmx")).toBe(0xe02e7n);
    expect(kvmSupportedXcr0(dmr, "svm")).toBe(0x602e7n);
    expect(kvmSupportedXcr0(0x1bn, "svm")).toBe(0x3n);
    expect(kvmSupportedXcr0(1n << 40n | 0x3n, "vmx")).toBe(0x3n);
  });
  it("guestSupportedXcr0 intersects the guest's leaf 0xD with KVM's mask", () => {
    expect(guestSupportedXcr0({ eax: 0x800e7, edx: 0 }, 0xe7n)).toBe(0xe7n);
    expect(guestSupportedXcr0([], 0xe7n)).toBe(0n);
  });
  it("validXcr0Values of kvm-pvm is the 4 values docs/facts.md#kvm-pvm-host names, of dmr includes APX ones", () => {
    expect(validXcr0Values(0xe7n)).toEqual([0x1n, 0x3n, 0x7n, 0xe7n]);
    expect(validXcr0Values(dmr.supportedXcr0)).toContain(0x80003n);
  });
});
