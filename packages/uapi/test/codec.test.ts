import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UapiDecodeError, UapiEncodeError } from "../src/errors.js";
import { decodeStruct, encodeStruct, encodeStructInto, zeroStruct } from "../src/structs/codec.js";
import { KVM_STRUCTS, type StructName } from "../src/structs/layout.js";
import { arbitraryStruct } from "./struct-arbitrary.js";

const names = Object.keys(KVM_STRUCTS) as StructName[];

describe("decodeStruct/encodeStruct", () => {
  it.each(names)("%s: decode(encode(x)) = x", (name) => {
    fc.assert(
      fc.property(arbitraryStruct(name), (v) => {
        const bytes = encodeStruct(name, v);
        expect(bytes.byteLength).toBe(KVM_STRUCTS[name].size);
        expect(decodeStruct(name, bytes)).toEqual(v);
      }),
      { numRuns: 50 },
    );
  });

  it.each(names)("%s: encode(decode(b)) = b for buffers whose unnamed padding is zero", (name) => {
    fc.assert(
      fc.property(arbitraryStruct(name), (v) => {
        const b = encodeStruct(name, v);
        expect(encodeStruct(name, decodeStruct(name, b))).toEqual(b);
      }),
      { numRuns: 20 },
    );
  });

  it.each(names)("%s: a buffer one byte short is a UapiDecodeError", (name) => {
    const size = KVM_STRUCTS[name].size;
    expect(() => decodeStruct(name, new Uint8Array(size - 1))).toThrow(UapiDecodeError);
    expect(() => decodeStruct(name, new Uint8Array(size + 8), 9)).toThrow(/truncated/);
  });

  it("reads kvm_regs little-endian at the kernel's offsets", () => {
    const b = new Uint8Array(144);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(128, 0xfff0n, true); // rip
    dv.setBigUint64(136, 0x2n, true); // rflags
    dv.setBigUint64(8, 0x1122334455667788n, true); // rbx, second in kvm_regs order
    const r = decodeStruct("kvm_regs", b);
    expect(r.rip).toBe(0xfff0n);
    expect(r.rflags).toBe(2n);
    expect(r.rbx).toBe(0x1122334455667788n);
    expect(r.rcx).toBe(0n);
  });

  it("decodes nested structs and struct arrays (kvm_sregs.cs, kvm_xcrs.xcrs[1])", () => {
    const s = zeroStruct("kvm_sregs");
    s.cs.selector = 0x8;
    s.cs.l = 1;
    s.efer = 0x500n;
    const back = decodeStruct("kvm_sregs", encodeStruct("kvm_sregs", s));
    expect(back.cs.selector).toBe(8);
    expect(back.cs.l).toBe(1);
    expect(back.efer).toBe(0x500n);
    const x = zeroStruct("kvm_xcrs");
    x.xcrs[1] = { xcr: 0, reserved: 0, value: 0xe7n };
    const bytes = encodeStruct("kvm_xcrs", x);
    expect(new DataView(bytes.buffer).getBigUint64(8 + 16 + 8, true)).toBe(0xe7n);
  });

  it("rejects values that do not fit their field, naming the path", () => {
    const r = zeroStruct("kvm_regs");
    expect(() => encodeStruct("kvm_regs", { ...r, rip: 1n << 64n })).toThrow(UapiEncodeError);
    expect(() => encodeStruct("kvm_regs", { ...r, rax: 5 as unknown as bigint })).toThrow(/rax: expected a u64/);
    const s = zeroStruct("kvm_sregs");
    s.cs.selector = 0x10000;
    expect(() => encodeStruct("kvm_sregs", s)).toThrow(/cs\.selector/);
    const f = zeroStruct("kvm_fpu");
    f.xmm = new Uint8Array(255);
    expect(() => encodeStruct("kvm_fpu", f)).toThrow(/xmm/);
    expect(() => encodeStruct("kvm_regs", null as never)).toThrow(UapiEncodeError);
  });

  it.each([1.5, -1, NaN, Infinity, 0x1_0000_0000, "1", 1n])("rejects %s in a u32 field", (bad) => {
    const e = { ...zeroStruct("kvm_cpuid_entry2"), eax: bad as number };
    expect(() => encodeStruct("kvm_cpuid_entry2", e)).toThrow(/eax: expected a u32 integer/);
  });

  it("names the path into nested structs and arrays", () => {
    const x = zeroStruct("kvm_xcrs");
    x.xcrs[3] = { xcr: 0, reserved: 0, value: -1n };
    expect(() => encodeStruct("kvm_xcrs", x)).toThrow(/xcrs\[3\]\.value: expected a u64/);
    const sync = zeroStruct("kvm_sync_regs");
    sync.sregs.gdt.padding = [0, 0, 0x10000];
    expect(() => encodeStruct("kvm_sync_regs", sync)).toThrow(/sregs\.gdt\.padding\[2\]: expected a u16/);
    expect(() => encodeStruct("kvm_regs", { ...zeroStruct("kvm_regs"), rip: undefined } as never)).toThrow(/rip: expected a u64 bigint, got undefined/);
  });

  it("encodeStructInto writes at an offset and zeroes unnamed padding", () => {
    const target = new Uint8Array(40).fill(0xaa);
    encodeStructInto("kvm_run_fail_entry", { hardware_entry_failure_reason: 7n, cpu: 3 }, target, 8);
    expect([...target.subarray(0, 8)]).toEqual(new Array(8).fill(0xaa));
    expect([...target.subarray(20, 24)]).toEqual([0, 0, 0, 0]); // tail padding of the 16-byte struct
    expect(decodeStruct("kvm_run_fail_entry", target, 8)).toEqual({ hardware_entry_failure_reason: 7n, cpu: 3 });
    expect(() => encodeStructInto("kvm_regs", zeroStruct("kvm_regs"), new Uint8Array(100))).toThrow(UapiEncodeError);
  });

  it("decoded u8 arrays are copies, not views of the input", () => {
    const b = new Uint8Array(416);
    const f = decodeStruct("kvm_fpu", b);
    b[0] = 9;
    expect(f.fpr[0]).toBe(0);
  });
});
