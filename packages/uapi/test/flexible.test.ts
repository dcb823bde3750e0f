import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UapiDecodeError, UapiEncodeError } from "../src/errors.js";
import {
  decodeKvmCpuid2,
  decodeKvmMsrs,
  decodeKvmXsave,
  encodeKvmCpuid2,
  encodeKvmMsrs,
  encodeKvmXsave,
  kvmCpuid2Size,
  kvmMsrsSize,
} from "../src/structs/flexible.js";
import { arbitraryStruct } from "./struct-arbitrary.js";

describe("kvm_cpuid2", () => {
  it("round-trips any entry list", () => {
    fc.assert(
      fc.property(fc.array(arbitraryStruct("kvm_cpuid_entry2"), { minLength: 1, maxLength: 20 }), (entries) => {
        const b = encodeKvmCpuid2(entries);
        expect(b.byteLength).toBe(kvmCpuid2Size(entries.length));
        expect(decodeKvmCpuid2(b)).toEqual(entries);
      }),
      { numRuns: 50 },
    );
  });
  it("an empty request carries its capacity in nent (KVM_GET_SUPPORTED_CPUID)", () => {
    const b = encodeKvmCpuid2([], 100);
    expect(new DataView(b.buffer).getUint32(0, true)).toBe(100);
    expect(b.byteLength).toBe(8 + 100 * 40);
  });
  it("rejects nent larger than the buffer", () => {
    const b = encodeKvmCpuid2([], 3);
    new DataView(b.buffer).setUint32(0, 4, true);
    expect(() => decodeKvmCpuid2(b)).toThrow(UapiDecodeError);
    expect(() => decodeKvmCpuid2(new Uint8Array(7))).toThrow(/truncated/);
  });
});

describe("kvm_msrs", () => {
  it("round-trips and honours the count KVM_GET_MSRS returned", () => {
    const entries = [
      { index: 0x10, reserved: 0, data: 5n },
      { index: 0xc0000080, reserved: 0, data: 0x500n },
    ];
    const b = encodeKvmMsrs(entries);
    expect(b.byteLength).toBe(kvmMsrsSize(2));
    expect(decodeKvmMsrs(b)).toEqual(entries);
    expect(decodeKvmMsrs(b, 1)).toEqual(entries.slice(0, 1));
    expect(() => decodeKvmMsrs(b, 3)).toThrow(UapiDecodeError);
    expect(() => decodeKvmMsrs(b.subarray(0, 20))).toThrow(/nmsrs 2 exceeds/);
  });
});

describe("kvm_xsave", () => {
  it("splits region and the XSAVE2 tail, and joins them back", () => {
    const b = new Uint8Array(8192).map((_, i) => i & 0xff);
    const x = decodeKvmXsave(b, 8192);
    expect(x.region.byteLength).toBe(4096);
    expect(x.extra.byteLength).toBe(4096);
    expect(encodeKvmXsave(x)).toEqual(b);
    expect(decodeKvmXsave(b).extra.byteLength).toBe(0);
  });
  it("rejects short buffers and sizes below 4096 or not a multiple of 4", () => {
    expect(() => decodeKvmXsave(new Uint8Array(4095))).toThrow(UapiDecodeError);
    expect(() => decodeKvmXsave(new Uint8Array(8192), 4097)).toThrow(UapiDecodeError);
    expect(() => decodeKvmXsave(new Uint8Array(8192), 2048)).toThrow(UapiDecodeError);
    expect(() => encodeKvmXsave({ region: new Uint8Array(4000), extra: new Uint8Array() })).toThrow(UapiEncodeError);
  });
});
