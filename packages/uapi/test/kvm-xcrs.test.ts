import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UapiDecodeError, UapiEncodeError } from "../src/errors.js";
import { decodeKvmXcrs, encodeKvmXcrs, KVM_MAX_XCRS } from "../src/structs/kvm-xcrs.js";
import { arbitraryStruct } from "./struct-arbitrary.js";

describe("kvm_xcrs", () => {
  it("round-trips up to KVM_MAX_XCRS entries", () => {
    fc.assert(
      fc.property(fc.array(arbitraryStruct("kvm_xcr"), { maxLength: KVM_MAX_XCRS }), fc.nat(0xffffffff), (xcrs, flags) => {
        expect(decodeKvmXcrs(encodeKvmXcrs({ flags, xcrs }))).toEqual({ flags, xcrs });
      }),
    );
  });
  it("encodes what KVM_GET_XCRS returns: nr_xcrs 1, {xcr 0, value XCR0}", () => {
    const b = encodeKvmXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: 0xe7n }] });
    const dv = new DataView(b.buffer);
    expect(b.byteLength).toBe(392);
    expect(dv.getUint32(0, true)).toBe(1);
    expect(dv.getBigUint64(16, true)).toBe(0xe7n);
  });
  it("nr_xcrs above 16 is malformed; more than 16 entries cannot be encoded", () => {
    const b = new Uint8Array(392);
    new DataView(b.buffer).setUint32(0, 17, true);
    expect(() => decodeKvmXcrs(b)).toThrow(UapiDecodeError);
    expect(() => encodeKvmXcrs({ flags: 0, xcrs: new Array(17).fill({ xcr: 0, reserved: 0, value: 1n }) })).toThrow(UapiEncodeError);
  });
});
