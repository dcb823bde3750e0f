import { fc, test as ftest } from "@fast-check/vitest";
import { describe, expect, test } from "vitest";
import { decodeExtendedInfo, decodeLegacyInfo, encodeExtendedInfo, encodeLegacyInfo, regOnlyInfo, type InstructionInfo } from "../src/instruction-info.js";

const infoArb: fc.Arbitrary<InstructionInfo> = fc.record({
  scale: fc.integer({ min: 0, max: 3 }), addressSize: fc.integer({ min: 0, max: 3 }), memReg: fc.integer({ min: 0, max: 1 }),
  operandSize: fc.integer({ min: 0, max: 3 }), segment: fc.integer({ min: 0, max: 7 }), indexInvalid: fc.boolean(), baseInvalid: fc.boolean(),
  reg1: fc.integer({ min: 0, max: 31 }), index: fc.integer({ min: 0, max: 31 }), base: fc.integer({ min: 0, max: 31 }), reg2: fc.integer({ min: 0, max: 31 }),
});

describe("VM-exit instruction information (docs/facts.md#vmx-exit-info)", () => {
  ftest.prop([infoArb])("EXTENDED_INSTRUCTION_INFO round-trips every 5-bit register field", (i) => {
    expect(decodeExtendedInfo(encodeExtendedInfo(i))).toEqual(i);
  });

  ftest.prop([infoArb])("the legacy field keeps only 4 bits of each register", (i) => {
    const d = decodeLegacyInfo(encodeLegacyInfo(i));
    expect([d.reg1, d.index, d.base, d.reg2]).toEqual([i.reg1 & 15, i.index & 15, i.base & 15, i.reg2 & 15]);
  });

  test("bit positions: reg1 20:16, index 28:24, base 36:32, reg2 44:40; legacy reg1 6:3", () => {
    const i = { ...regOnlyInfo(0), indexInvalid: false, baseInvalid: false, addressSize: 0, memReg: 0 };
    expect(encodeExtendedInfo({ ...i, reg1: 31 })).toBe(31n << 16n);
    expect(encodeExtendedInfo({ ...i, index: 17 })).toBe(17n << 24n);
    expect(encodeExtendedInfo({ ...i, base: 16 })).toBe(16n << 32n);
    expect(encodeExtendedInfo({ ...i, reg2: 20 })).toBe(20n << 40n);
    expect(encodeLegacyInfo({ ...i, reg1: 9 })).toBe(9n << 3n);
    expect(decodeLegacyInfo(encodeLegacyInfo({ ...i, reg1: 16 })).reg1).toBe(0); // R16 reads as RAX in the old field
  });
});
