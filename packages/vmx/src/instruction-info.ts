/**
 * VM-exit instruction information (docs/facts.md#vmx-exit-info): the legacy 32-bit VMX_INSTRUCTION_INFO with 4-bit
 * register fields (reg1 6:3, index 21:18, base 26:23, reg2 31:28) and the 64-bit
 * EXTENDED_INSTRUCTION_INFO (0x2406, valid whenever the CPU enumerates APX_F) with 5-bit fields
 * (reg1 20:16, index 28:24, base 36:32, reg2 44:40). Common fields sit at the same bits in both.
 */
export interface InstructionInfo {
  scale: number; // 1:0
  addressSize: number; // 3:2 in the extended field (9:7 in the legacy one)
  memReg: number; // 4 (legacy bit 10)
  operandSize: number; // 6:5 (extended)
  segment: number; // 9:7 (extended)
  indexInvalid: boolean; // 10 (extended; legacy 22)
  baseInvalid: boolean; // 11 (extended; legacy 27)
  reg1: number;
  index: number;
  base: number;
  reg2: number;
}

const f = (v: bigint, lo: number, bits: number): number => Number((v >> BigInt(lo)) & ((1n << BigInt(bits)) - 1n));
const put = (x: number, lo: number, bits: number): bigint => (BigInt(x) & ((1n << BigInt(bits)) - 1n)) << BigInt(lo);

export function encodeExtendedInfo(i: InstructionInfo): bigint {
  return (
    put(i.scale, 0, 2) | put(i.addressSize, 2, 2) | put(i.memReg, 4, 1) | put(i.operandSize, 5, 2) |
    put(i.segment, 7, 3) | put(i.indexInvalid ? 1 : 0, 10, 1) | put(i.baseInvalid ? 1 : 0, 11, 1) |
    put(i.reg1, 16, 5) | put(i.index, 24, 5) | put(i.base, 32, 5) | put(i.reg2, 40, 5)
  );
}

export function decodeExtendedInfo(v: bigint): InstructionInfo {
  return {
    scale: f(v, 0, 2), addressSize: f(v, 2, 2), memReg: f(v, 4, 1), operandSize: f(v, 5, 2), segment: f(v, 7, 3),
    indexInvalid: f(v, 10, 1) === 1, baseInvalid: f(v, 11, 1) === 1,
    reg1: f(v, 16, 5), index: f(v, 24, 5), base: f(v, 32, 5), reg2: f(v, 40, 5),
  };
}

/** Legacy field: the register fields are 4 bits wide, so R16–R31 lose bit 4 (why 0x2406 exists). */
export function encodeLegacyInfo(i: InstructionInfo): bigint {
  return (
    put(i.scale, 0, 2) | put(i.reg1, 3, 4) | put(i.addressSize, 7, 3) | put(i.memReg, 10, 1) |
    put(i.segment, 15, 3) | put(i.index, 18, 4) | put(i.indexInvalid ? 1 : 0, 22, 1) | put(i.base, 23, 4) |
    put(i.baseInvalid ? 1 : 0, 27, 1) | put(i.reg2, 28, 4)
  );
}

export function decodeLegacyInfo(v: bigint): InstructionInfo {
  return {
    scale: f(v, 0, 2), reg1: f(v, 3, 4), addressSize: f(v, 7, 3), memReg: f(v, 10, 1), operandSize: 0,
    segment: f(v, 15, 3), index: f(v, 18, 4), indexInvalid: f(v, 22, 1) === 1, base: f(v, 23, 4),
    baseInvalid: f(v, 27, 1) === 1, reg2: f(v, 28, 4),
  };
}

/** An info value naming only reg1 (the MSR-immediate forms' data register), register operand. */
export const regOnlyInfo = (reg1: number): InstructionInfo => ({
  scale: 0, addressSize: 2, memReg: 1, operandSize: 0, segment: 0, indexInvalid: true, baseInvalid: true,
  reg1, index: 0, base: 0, reg2: 0,
});
