/**
 * The instruction subset kvmx executes, as ONE table that drives the decoder, the tests and the
 * docs. `INSTRUCTIONS` says, per op, how it is encoded and where the encoding comes from; `encode`,
 * `decode` and the table-driven tests all read it. The executor (executor.ts) gives the ops meaning.
 *
 * Register operands are GPR indices 0..31 in hardware order (gpr.ts); 16..31 are APX's R16–R31 and
 * force an APX encoding: REX2 (0xD5) for legacy opcodes, EVEX for PUSH2/POP2 and the MSR-immediate
 * forms (docs/facts.md#rex2-encoding, docs/facts.md#push2-pop2, docs/facts.md#msr-imm).
 */
import { InputError } from "../errors.js";
import type { CpuMode } from "./physical-cpu.js";
import { GPR_NAMES, NR_GPRS } from "./gpr.js";

/** A memory operand `[base + disp]`: base is any of the 32 GPRs, disp a signed 32-bit displacement. */
export interface MemOperand {
  readonly base: number;
  readonly disp: number;
}

/**
 * The typed instruction union. `rex2: true` on a MOV asks for the REX2 form even when every register
 * is legacy (REX2 can name R0–R15 too, e.g. `pushp %rax` = D5 08 50); naming R16–R31 always selects it.
 */
export type Instruction =
  | { readonly op: "mov-r64-imm64"; readonly dst: number; readonly imm: bigint; readonly rex2?: boolean }
  | { readonly op: "mov-r64-r64"; readonly dst: number; readonly src: number; readonly rex2?: boolean }
  | { readonly op: "mov-m64-r64"; readonly mem: MemOperand; readonly src: number; readonly rex2?: boolean }
  | { readonly op: "mov-r64-m64"; readonly dst: number; readonly mem: MemOperand; readonly rex2?: boolean }
  /** PUSH2 first, second (Intel operand order): pushes `first` then `second`; `first` is EVEX.vvvv. */
  | { readonly op: "push2"; readonly first: number; readonly second: number }
  /** POP2 first, second (Intel operand order): pops into `first` then `second`; `first` is EVEX.vvvv. */
  | { readonly op: "pop2"; readonly first: number; readonly second: number }
  | { readonly op: "xsetbv" }
  | { readonly op: "xgetbv" }
  | { readonly op: "rdmsr" }
  | { readonly op: "wrmsr" }
  /** RDMSR r64, imm32: MSR[msr] → dst. VMX exit reason 84; the data register is reg1 of the instruction info. */
  | { readonly op: "rdmsr-imm"; readonly dst: number; readonly msr: number }
  /** WRMSRNS imm32, r64: src → MSR[msr]. VMX exit reason 85, handled in KVM's fastpath. */
  | { readonly op: "wrmsrns-imm"; readonly src: number; readonly msr: number }
  | { readonly op: "cpuid" }
  | { readonly op: "hlt" }
  | { readonly op: "out-imm8-al"; readonly port: number }
  | { readonly op: "out-dx-al" }
  | { readonly op: "vmcall" }
  | { readonly op: "xsave"; readonly mem: MemOperand; readonly rex2?: boolean }
  | { readonly op: "xrstor"; readonly mem: MemOperand; readonly rex2?: boolean }
  /** RDPKRU / WRPKRU: EDX:EAX ← PKRU, PKRU ← EAX (ECX, and for WRPKRU EDX, must be 0). */
  | { readonly op: "rdpkru" }
  | { readonly op: "wrpkru" }
  /** MOV CR3, RAX / MOV RAX, CR3 (the model's one register form). */
  | { readonly op: "mov-cr3-rax" }
  | { readonly op: "mov-rax-cr3" }
  /** MOV DR6, RAX / MOV RAX, DR6. */
  | { readonly op: "mov-dr6-rax" }
  | { readonly op: "mov-rax-dr6" }
  /** TILELOADD tmm1, [rax + rcx*8]: puts AMX tile data in use (XINUSE[18]). */
  | { readonly op: "tileloadd" };

export type InstructionOp = Instruction["op"];
export type InstructionOf<O extends InstructionOp> = Extract<Instruction, { op: O }>;

/** How sure we are of an encoding: "verified" against an assembler test or docs/facts.md; "by-analogy" is tagged secondary there. */
export type EncodingStatus = "verified" | "by-analogy";

/** How the table describes an op's bytes; encode() and decode() switch on `kind`. */
export type EncodingSpec =
  /** Fixed bytes, no operands (e.g. XSETBV 0F 01 D1). */
  | { readonly kind: "fixed"; readonly bytes: readonly number[] }
  /** Fixed opcode followed by an 8-bit immediate (OUT imm8, AL). */
  | { readonly kind: "fixed-imm8"; readonly bytes: readonly number[] }
  /** REX.W/REX2.W + opcode+reg, imm64 (MOV r64, imm64). */
  | { readonly kind: "opreg-imm64"; readonly opcode: number }
  /** REX.W/REX2.W + opcode + ModRM; `mem` says whether rm is memory, `regRole` which operand sits in ModRM.reg. */
  | { readonly kind: "modrm-w"; readonly opcode: number; readonly mem: boolean; readonly regRole: "src" | "dst" }
  /** 0F-map opcode with a ModRM /digit memory operand (XSAVE 0F AE /4), REX or REX2 (M0=1) for the base. */
  | { readonly kind: "map1-digit-mem"; readonly opcode: number; readonly digit: number }
  /** EVEX map 4, ND=1, ModRM.mod=3 /digit (PUSH2/POP2). */
  | { readonly kind: "evex-map4-nd"; readonly opcode: number; readonly digit: number }
  /** VEX.128.<pp>.M7.W0 opcode /0 id for R0–R15; EVEX map 7 for R16–R31 (MSR-immediate forms). */
  | { readonly kind: "map7-imm32"; readonly opcode: number; readonly pp: 2 | 3 };

export interface InstructionSpec {
  readonly mnemonic: string;
  /** Intel-syntax operand summary, for docs and `kvmx cpu`. */
  readonly operands: string;
  readonly encoding: EncodingSpec;
  /** Valid only in 64-bit mode (#UD elsewhere). */
  readonly longModeOnly: boolean;
  /** #GP(0) when CPL > 0 (checked before any VM exit, SDM "relative priority of faults and VM exits"). */
  readonly cpl0: boolean;
  readonly status: EncodingStatus;
  readonly source: string;
}

/** THE table. Keys are the `op` tags of Instruction. */
export const INSTRUCTIONS: { readonly [O in InstructionOp]: InstructionSpec } = {
  "mov-r64-imm64": {
    mnemonic: "mov", operands: "r64, imm64", encoding: { kind: "opreg-imm64", opcode: 0xb8 },
    longModeOnly: true, cpl0: false, status: "verified", source: "SDM MOV B8+rd io; REX2 per docs/facts.md#rex2-encoding",
  },
  "mov-r64-r64": {
    mnemonic: "mov", operands: "r64, r64", encoding: { kind: "modrm-w", opcode: 0x89, mem: false, regRole: "src" },
    longModeOnly: true, cpl0: false, status: "verified", source: "docs/facts.md#rex2-encoding: mov %r16,%rax = D5 48 89 C0",
  },
  "mov-m64-r64": {
    mnemonic: "mov", operands: "m64, r64", encoding: { kind: "modrm-w", opcode: 0x89, mem: true, regRole: "src" },
    longModeOnly: true, cpl0: false, status: "verified", source: "SDM MOV 89 /r",
  },
  "mov-r64-m64": {
    mnemonic: "mov", operands: "r64, m64", encoding: { kind: "modrm-w", opcode: 0x8b, mem: true, regRole: "dst" },
    longModeOnly: true, cpl0: false, status: "verified", source: "SDM MOV 8B /r",
  },
  push2: {
    mnemonic: "push2", operands: "r64 (vvvv), r64 (rm)", encoding: { kind: "evex-map4-nd", opcode: 0xff, digit: 6 },
    longModeOnly: true, cpl0: false, status: "verified", source: "docs/facts.md#push2-pop2; LLVM MC apx/push2-pop2 tests (62 F4 44 18 FF F0)",
  },
  pop2: {
    mnemonic: "pop2", operands: "r64 (vvvv), r64 (rm)", encoding: { kind: "evex-map4-nd", opcode: 0x8f, digit: 0 },
    longModeOnly: true, cpl0: false, status: "verified", source: "docs/facts.md#push2-pop2; LLVM MC apx/push2-pop2 tests (62 F4 44 18 8F C0)",
  },
  xsetbv: {
    mnemonic: "xsetbv", operands: "", encoding: { kind: "fixed", bytes: [0x0f, 0x01, 0xd1] },
    longModeOnly: false, cpl0: true, status: "verified", source: "SDM XSETBV 0F 01 D1",
  },
  xgetbv: {
    mnemonic: "xgetbv", operands: "", encoding: { kind: "fixed", bytes: [0x0f, 0x01, 0xd0] },
    longModeOnly: false, cpl0: false, status: "verified", source: "SDM XGETBV 0F 01 D0",
  },
  rdmsr: {
    mnemonic: "rdmsr", operands: "", encoding: { kind: "fixed", bytes: [0x0f, 0x32] },
    longModeOnly: false, cpl0: true, status: "verified", source: "SDM RDMSR 0F 32",
  },
  wrmsr: {
    mnemonic: "wrmsr", operands: "", encoding: { kind: "fixed", bytes: [0x0f, 0x30] },
    longModeOnly: false, cpl0: true, status: "verified", source: "SDM WRMSR 0F 30",
  },
  "rdmsr-imm": {
    mnemonic: "rdmsr", operands: "r64, imm32", encoding: { kind: "map7-imm32", opcode: 0xf6, pp: 3 },
    longModeOnly: true, cpl0: true, status: "verified",
    source:
      "VEX.128.F2.M7.W0 F6 /0 id (kernel x86-opcode-map; LLVM: rdmsr $123,%r9 = C4 C7 7B F6 C1 7B 00 00 00). " +
      "R16–R31: EVEX map 7 by analogy with URDMSR imm (binutils: 62 FF 7F 08 F8 C6) — see ASSUMPTIONS.msrImmEgprEncoding",
  },
  "wrmsrns-imm": {
    mnemonic: "wrmsrns", operands: "imm32, r64", encoding: { kind: "map7-imm32", opcode: 0xf6, pp: 2 },
    longModeOnly: true, cpl0: true, status: "verified",
    source:
      "VEX.128.F3.M7.W0 F6 /0 id (kernel x86-opcode-map; LLVM: wrmsrns %r9,$123 = C4 C7 7A F6 C1 7B 00 00 00). " +
      "R16–R31: EVEX map 7 by analogy with UWRMSR imm — see ASSUMPTIONS.msrImmEgprEncoding",
  },
  cpuid: {
    mnemonic: "cpuid", operands: "", encoding: { kind: "fixed", bytes: [0x0f, 0xa2] },
    longModeOnly: false, cpl0: false, status: "verified", source: "SDM CPUID 0F A2",
  },
  hlt: {
    mnemonic: "hlt", operands: "", encoding: { kind: "fixed", bytes: [0xf4] },
    longModeOnly: false, cpl0: true, status: "verified", source: "SDM HLT F4",
  },
  "out-imm8-al": {
    mnemonic: "out", operands: "imm8, al", encoding: { kind: "fixed-imm8", bytes: [0xe6] },
    longModeOnly: false, cpl0: false, status: "verified", source: "SDM OUT E6 ib",
  },
  "out-dx-al": {
    mnemonic: "out", operands: "dx, al", encoding: { kind: "fixed", bytes: [0xee] },
    longModeOnly: false, cpl0: false, status: "verified", source: "SDM OUT EE",
  },
  vmcall: {
    mnemonic: "vmcall", operands: "", encoding: { kind: "fixed", bytes: [0x0f, 0x01, 0xc1] },
    longModeOnly: false, cpl0: false, status: "verified", source: "SDM VMCALL 0F 01 C1",
  },
  xsave: {
    mnemonic: "xsave", operands: "mem", encoding: { kind: "map1-digit-mem", opcode: 0xae, digit: 4 },
    longModeOnly: false, cpl0: false, status: "verified", source: "SDM XSAVE 0F AE /4",
  },
  xrstor: {
    mnemonic: "xrstor", operands: "mem", encoding: { kind: "map1-digit-mem", opcode: 0xae, digit: 5 },
    longModeOnly: false, cpl0: false, status: "verified", source: "SDM XRSTOR 0F AE /5",
  },
  rdpkru: {
    mnemonic: "rdpkru", operands: "", encoding: { kind: "fixed", bytes: [0x0f, 0x01, 0xee] },
    longModeOnly: false, cpl0: false, status: "verified", source: "SDM RDPKRU 0F 01 EE",
  },
  wrpkru: {
    mnemonic: "wrpkru", operands: "", encoding: { kind: "fixed", bytes: [0x0f, 0x01, 0xef] },
    longModeOnly: false, cpl0: false, status: "verified", source: "SDM WRPKRU 0F 01 EF",
  },
  "mov-cr3-rax": {
    mnemonic: "mov", operands: "cr3, rax", encoding: { kind: "fixed", bytes: [0x0f, 0x22, 0xd8] },
    longModeOnly: true, cpl0: true, status: "verified", source: "SDM MOV CR, r64 0F 22 /r (ModRM D8: reg 3 = CR3, rm 0 = RAX)",
  },
  "mov-rax-cr3": {
    mnemonic: "mov", operands: "rax, cr3", encoding: { kind: "fixed", bytes: [0x0f, 0x20, 0xd8] },
    longModeOnly: true, cpl0: true, status: "verified", source: "SDM MOV r64, CR 0F 20 /r (ModRM D8)",
  },
  "mov-dr6-rax": {
    mnemonic: "mov", operands: "dr6, rax", encoding: { kind: "fixed", bytes: [0x0f, 0x23, 0xf0] },
    longModeOnly: true, cpl0: true, status: "verified", source: "SDM MOV DR, r64 0F 23 /r (ModRM F0: reg 6 = DR6, rm 0 = RAX)",
  },
  "mov-rax-dr6": {
    mnemonic: "mov", operands: "rax, dr6", encoding: { kind: "fixed", bytes: [0x0f, 0x21, 0xf0] },
    longModeOnly: true, cpl0: true, status: "verified", source: "SDM MOV r64, DR 0F 21 /r (ModRM F0)",
  },
  tileloadd: {
    mnemonic: "tileloadd", operands: "tmm1, [rax + rcx*8]", encoding: { kind: "fixed", bytes: [0xc4, 0xe2, 0x7b, 0x4b, 0x0c, 0xc8] },
    longModeOnly: true, cpl0: false, status: "verified",
    source: "SDM TILELOADD VEX.128.F2.0F38.W0 4B; the kernel's x86 instruction-decoder test: tileloadd (%rax,%rcx,8),%tmm1 = c4 e2 7b 4b 0c c8",
  },
};

export const INSTRUCTION_OPS = Object.keys(INSTRUCTIONS) as InstructionOp[];

/** A known encoding: the instruction, its bytes (hex) and where the bytes come from. */
export interface InstructionExample<O extends InstructionOp = InstructionOp> {
  readonly insn: InstructionOf<O>;
  readonly bytes: string;
  readonly source: string;
}

const M = (base: number, disp = 0): MemOperand => ({ base, disp });

/**
 * Known encodings per op, the other half of the table (same keys; the type makes every op have some).
 * The table-driven tests encode and decode each of them.
 */
export const INSTRUCTION_EXAMPLES: { readonly [O in InstructionOp]: readonly InstructionExample<O>[] } = {
  "mov-r64-imm64": [
    { insn: { op: "mov-r64-imm64", dst: 0, imm: 0x1122334455667788n }, bytes: "48 b8 88 77 66 55 44 33 22 11", source: "SDM REX.W B8" },
    { insn: { op: "mov-r64-imm64", dst: 16, imm: 1n }, bytes: "d5 18 b8 01 00 00 00 00 00 00 00", source: "REX2 payload per docs/facts.md#rex2-encoding" },
  ],
  "mov-r64-r64": [
    { insn: { op: "mov-r64-r64", dst: 0, src: 16 }, bytes: "d5 48 89 c0", source: "docs/facts.md#rex2-encoding mov %r16,%rax" },
    { insn: { op: "mov-r64-r64", dst: 16, src: 0 }, bytes: "d5 18 89 c0", source: "docs/facts.md#rex2-encoding mov %rax,%r16" },
    { insn: { op: "mov-r64-r64", dst: 3, src: 0 }, bytes: "48 89 c3", source: "SDM MOV 89 /r" },
  ],
  "mov-m64-r64": [
    { insn: { op: "mov-m64-r64", mem: M(4, 8), src: 0 }, bytes: "48 89 44 24 08", source: "SDM MOV 89 /r, SIB for RSP" },
    { insn: { op: "mov-m64-r64", mem: M(16), src: 0 }, bytes: "d5 18 89 00", source: "REX2 B4 per docs/facts.md#rex2-encoding" },
  ],
  "mov-r64-m64": [
    { insn: { op: "mov-r64-m64", dst: 0, mem: M(5) }, bytes: "48 8b 45 00", source: "SDM MOV 8B /r, RBP needs disp8" },
    { insn: { op: "mov-r64-m64", dst: 31, mem: M(12, 0x100) }, bytes: "d5 4d 8b bc 24 00 01 00 00", source: "REX2 R4/R3/B3 per docs/facts.md#rex2-encoding" },
  ],
  push2: [
    { insn: { op: "push2", first: 7, second: 0 }, bytes: "62 f4 44 18 ff f0", source: "LLVM MC push2 %rax, %rdi" },
    { insn: { op: "push2", first: 16, second: 15 }, bytes: "62 d4 7c 10 ff f7", source: "LLVM MC push2 %r15, %r16" },
    { insn: { op: "push2", first: 31, second: 24 }, bytes: "62 dc 04 10 ff f0", source: "LLVM MC push2 %r24, %r31" },
  ],
  pop2: [
    { insn: { op: "pop2", first: 7, second: 0 }, bytes: "62 f4 44 18 8f c0", source: "LLVM MC pop2 %rax, %rdi" },
    { insn: { op: "pop2", first: 23, second: 16 }, bytes: "62 fc 44 10 8f c0", source: "LLVM MC pop2 %r16, %r23" },
  ],
  xsetbv: [{ insn: { op: "xsetbv" }, bytes: "0f 01 d1", source: "SDM" }],
  xgetbv: [{ insn: { op: "xgetbv" }, bytes: "0f 01 d0", source: "SDM" }],
  rdmsr: [{ insn: { op: "rdmsr" }, bytes: "0f 32", source: "SDM" }],
  wrmsr: [{ insn: { op: "wrmsr" }, bytes: "0f 30", source: "SDM" }],
  "rdmsr-imm": [
    { insn: { op: "rdmsr-imm", dst: 9, msr: 123 }, bytes: "c4 c7 7b f6 c1 7b 00 00 00", source: "LLVM MC rdmsr $123, %r9" },
    { insn: { op: "rdmsr-imm", dst: 0, msr: 0x10 }, bytes: "c4 e7 7b f6 c0 10 00 00 00", source: "kernel selftests RDMSR $msr, %rax bytes" },
    { insn: { op: "rdmsr-imm", dst: 22, msr: 0x80000000 }, bytes: "62 ff 7f 08 f6 c6 00 00 00 80", source: "[2nd] by analogy with binutils urdmsr $0x80000000,%r22" },
  ],
  "wrmsrns-imm": [
    { insn: { op: "wrmsrns-imm", src: 9, msr: 123 }, bytes: "c4 c7 7a f6 c1 7b 00 00 00", source: "LLVM MC wrmsrns %r9, $123" },
    { insn: { op: "wrmsrns-imm", src: 22, msr: 0x80000000 }, bytes: "62 ff 7e 08 f6 c6 00 00 00 80", source: "[2nd] by analogy with binutils uwrmsr %r22,$0x80000000" },
  ],
  cpuid: [{ insn: { op: "cpuid" }, bytes: "0f a2", source: "SDM" }],
  hlt: [{ insn: { op: "hlt" }, bytes: "f4", source: "SDM" }],
  "out-imm8-al": [{ insn: { op: "out-imm8-al", port: 0x80 }, bytes: "e6 80", source: "SDM" }],
  "out-dx-al": [{ insn: { op: "out-dx-al" }, bytes: "ee", source: "SDM" }],
  vmcall: [{ insn: { op: "vmcall" }, bytes: "0f 01 c1", source: "SDM" }],
  xsave: [
    { insn: { op: "xsave", mem: M(7) }, bytes: "0f ae 27", source: "SDM 0F AE /4" },
    { insn: { op: "xsave", mem: M(8) }, bytes: "41 0f ae 20", source: "SDM REX.B" },
    { insn: { op: "xsave", mem: M(16) }, bytes: "d5 90 ae 20", source: "REX2 M0=1 (map 1), B4 per docs/facts.md#rex2-encoding" },
  ],
  xrstor: [{ insn: { op: "xrstor", mem: M(7) }, bytes: "0f ae 2f", source: "SDM 0F AE /5" }],
  rdpkru: [{ insn: { op: "rdpkru" }, bytes: "0f 01 ee", source: "SDM" }],
  wrpkru: [{ insn: { op: "wrpkru" }, bytes: "0f 01 ef", source: "SDM" }],
  "mov-cr3-rax": [{ insn: { op: "mov-cr3-rax" }, bytes: "0f 22 d8", source: "SDM 0F 22 /r" }],
  "mov-rax-cr3": [{ insn: { op: "mov-rax-cr3" }, bytes: "0f 20 d8", source: "SDM 0F 20 /r" }],
  "mov-dr6-rax": [{ insn: { op: "mov-dr6-rax" }, bytes: "0f 23 f0", source: "SDM 0F 23 /r" }],
  "mov-rax-dr6": [{ insn: { op: "mov-rax-dr6" }, bytes: "0f 21 f0", source: "SDM 0F 21 /r" }],
  tileloadd: [{ insn: { op: "tileloadd" }, bytes: "c4 e2 7b 4b 0c c8", source: "kernel x86 insn decoder test: tileloadd (%rax,%rcx,8),%tmm1" }],
};

/** Encoding problems: an operand out of range, or an op whose encoding kvmx could not establish. */
export class EncodeError extends InputError {}

/** Why bytes did not decode: too few bytes, an encoding outside the subset, or one the CPU rejects (#UD). */
export type DecodeFailure = "truncated" | "unsupported" | "invalid";

export class DecodeError extends InputError {
  constructor(
    message: string,
    readonly failure: DecodeFailure,
    readonly offset: number,
  ) {
    super(`${message} (at byte ${offset})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Constructors (validate operands once, so encode/execute can trust them).

function checkGpr(r: number, what: string): number {
  if (!Number.isInteger(r) || r < 0 || r >= NR_GPRS) throw new EncodeError(`${what}: GPR index ${r} is not 0..31`);
  return r;
}

function checkMem(m: MemOperand): MemOperand {
  checkGpr(m.base, "memory base");
  if (!Number.isInteger(m.disp) || m.disp < -0x8000_0000 || m.disp > 0x7fff_ffff) {
    throw new EncodeError(`memory displacement ${m.disp} does not fit a signed 32-bit field`);
  }
  return { base: m.base, disp: m.disp };
}

function checkU32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new EncodeError(`${what} ${v} is not a u32`);
  return v;
}

/** `rex2: true` is kept only where it changes the encoding (no EGPR named), so equal instructions compare equal. */
function withRex2<T extends Instruction>(i: T, rex2: boolean | undefined): T {
  return rex2 && !touchesEgpr(i) ? { ...i, rex2: true } : i;
}

export const insn = {
  movImm: (dst: number, imm: bigint, rex2?: boolean): Instruction =>
    withRex2({ op: "mov-r64-imm64", dst: checkGpr(dst, "mov dst"), imm: BigInt.asUintN(64, imm) }, rex2),
  mov: (dst: number, src: number, rex2?: boolean): Instruction =>
    withRex2({ op: "mov-r64-r64", dst: checkGpr(dst, "mov dst"), src: checkGpr(src, "mov src") }, rex2),
  store: (mem: MemOperand, src: number, rex2?: boolean): Instruction =>
    withRex2({ op: "mov-m64-r64", mem: checkMem(mem), src: checkGpr(src, "mov src") }, rex2),
  load: (dst: number, mem: MemOperand, rex2?: boolean): Instruction =>
    withRex2({ op: "mov-r64-m64", dst: checkGpr(dst, "mov dst"), mem: checkMem(mem) }, rex2),
  push2: (first: number, second: number): Instruction => ({
    op: "push2", first: checkGpr(first, "push2"), second: checkGpr(second, "push2"),
  }),
  pop2: (first: number, second: number): Instruction => ({
    op: "pop2", first: checkGpr(first, "pop2"), second: checkGpr(second, "pop2"),
  }),
  xsetbv: (): Instruction => ({ op: "xsetbv" }),
  xgetbv: (): Instruction => ({ op: "xgetbv" }),
  rdmsr: (): Instruction => ({ op: "rdmsr" }),
  wrmsr: (): Instruction => ({ op: "wrmsr" }),
  rdmsrImm: (dst: number, msr: number): Instruction => ({
    op: "rdmsr-imm", dst: checkGpr(dst, "rdmsr dst"), msr: checkU32(msr, "MSR index"),
  }),
  wrmsrnsImm: (msr: number, src: number): Instruction => ({
    op: "wrmsrns-imm", src: checkGpr(src, "wrmsrns src"), msr: checkU32(msr, "MSR index"),
  }),
  cpuid: (): Instruction => ({ op: "cpuid" }),
  hlt: (): Instruction => ({ op: "hlt" }),
  outImm8: (port: number): Instruction => {
    if (!Number.isInteger(port) || port < 0 || port > 0xff) throw new EncodeError(`OUT port ${port} is not an imm8`);
    return { op: "out-imm8-al", port };
  },
  outDx: (): Instruction => ({ op: "out-dx-al" }),
  vmcall: (): Instruction => ({ op: "vmcall" }),
  xsave: (mem: MemOperand, rex2?: boolean): Instruction => withRex2({ op: "xsave", mem: checkMem(mem) }, rex2),
  xrstor: (mem: MemOperand, rex2?: boolean): Instruction => withRex2({ op: "xrstor", mem: checkMem(mem) }, rex2),
} as const;

// ---------------------------------------------------------------------------------------------
// Register operands and encoding form: shared by encoder, executor and the checker.

/** Every GPR an instruction names explicitly (registers, memory bases), not the implicit RAX/RCX/RDX/RSP. */
export function namedGprs(i: Instruction): number[] {
  switch (i.op) {
    case "mov-r64-imm64":
      return [i.dst];
    case "mov-r64-r64":
      return [i.dst, i.src];
    case "mov-m64-r64":
      return [i.mem.base, i.src];
    case "mov-r64-m64":
      return [i.dst, i.mem.base];
    case "push2":
    case "pop2":
      return [i.first, i.second];
    case "rdmsr-imm":
      return [i.dst];
    case "wrmsrns-imm":
      return [i.src];
    case "xsave":
    case "xrstor":
      return [i.mem.base];
    default:
      return [];
  }
}

/** Whether the instruction names any of R16–R31 (docs/facts.md#apx-access-gate). */
export function touchesEgpr(i: Instruction): boolean {
  // Allocation-free: the executor asks this for every instruction it runs.
  switch (i.op) {
    case "mov-r64-imm64":
    case "rdmsr-imm":
      return i.dst >= 16;
    case "mov-r64-r64":
      return i.dst >= 16 || i.src >= 16;
    case "mov-m64-r64":
      return i.mem.base >= 16 || i.src >= 16;
    case "mov-r64-m64":
      return i.dst >= 16 || i.mem.base >= 16;
    case "push2":
    case "pop2":
      return i.first >= 16 || i.second >= 16;
    case "wrmsrns-imm":
      return i.src >= 16;
    case "xsave":
    case "xrstor":
      return i.mem.base >= 16;
    default:
      return false;
  }
}

/**
 * The prefix family the instruction is encoded with. "rex2" and "evex-apx" are APX encodings: they
 * #UD unless 64-bit mode, CR4.OSXSAVE=1 and XCR0[19]=1. PUSH2/POP2 are always "evex-apx".
 */
export type EncodingForm = "legacy" | "rex" | "rex2" | "vex" | "evex-apx";

export function encodingForm(i: Instruction): EncodingForm {
  const spec = INSTRUCTIONS[i.op].encoding;
  switch (spec.kind) {
    case "fixed":
    case "fixed-imm8":
      return "legacy";
    case "evex-map4-nd":
      return "evex-apx";
    case "map7-imm32":
      return touchesEgpr(i) ? "evex-apx" : "vex";
    case "opreg-imm64":
    case "modrm-w":
      return touchesEgpr(i) || ("rex2" in i && i.rex2 === true) ? "rex2" : "rex";
    case "map1-digit-mem":
      if (touchesEgpr(i) || ("rex2" in i && i.rex2 === true)) return "rex2";
      return namedGprs(i).some((r) => r >= 8) ? "rex" : "legacy";
  }
}

/** True when executing the instruction needs APX enabled (REX2 or an APX EVEX form). */
export const usesApxEncoding = (i: Instruction): boolean => {
  const f = encodingForm(i);
  return f === "rex2" || f === "evex-apx";
};

/**
 * usesApxEncoding without the table walk, for the executor's hot path: PUSH2/POP2 are always APX-EVEX,
 * every other form becomes APX exactly when it names R16–R31 or asks for REX2 (a test checks the two agree
 * on every example of the table).
 */
export const apxEncoded = (i: Instruction): boolean =>
  i.op === "push2" || i.op === "pop2" || touchesEgpr(i) || (i as { rex2?: boolean }).rex2 === true;

// ---------------------------------------------------------------------------------------------
// Encoder

const bit = (v: number, n: number): number => (v >> n) & 1;

function rexByte(w: number, reg: number, index: number, base: number): number {
  return 0x40 | (w << 3) | (bit(reg, 3) << 2) | (bit(index, 3) << 1) | bit(base, 3);
}

/** REX2 payload [M0 R4 X4 B4 W R3 X3 B3] (docs/facts.md#rex2-encoding). */
function rex2Payload(m0: number, w: number, reg: number, index: number, base: number): number {
  return (
    (m0 << 7) | (bit(reg, 4) << 6) | (bit(index, 4) << 5) | (bit(base, 4) << 4) |
    (w << 3) | (bit(reg, 3) << 2) | (bit(index, 3) << 1) | bit(base, 3)
  );
}

/** ModRM (+SIB, +disp) for `[base + disp]`; RSP/R12-class bases need a SIB, RBP/R13-class need a displacement. */
function memBytes(regField: number, m: MemOperand): number[] {
  const low = m.base & 7;
  const out: number[] = [];
  let mod: number;
  if (m.disp === 0 && low !== 5) mod = 0;
  else if (m.disp >= -128 && m.disp <= 127) mod = 1;
  else mod = 2;
  out.push((mod << 6) | ((regField & 7) << 3) | low);
  if (low === 4) out.push(0x24); // SIB: scale 1, no index, base = RSP-class register
  if (mod === 1) out.push(m.disp & 0xff);
  if (mod === 2) pushU32(out, m.disp >>> 0);
  return out;
}

function pushU32(out: number[], v: number): void {
  out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
}

/** EVEX P0 byte: [R̄3 X̄3 B̄3 R̄4 B4 m m m] with R and X unused (no ModRM.reg register, no index). */
const evexP0 = (rm: number, map: number): number =>
  0x80 | 0x40 | ((bit(rm, 3) ^ 1) << 5) | 0x10 | (bit(rm, 4) << 3) | map;

export function encode(i: Instruction): Uint8Array {
  const spec = INSTRUCTIONS[i.op].encoding;
  const out: number[] = [];
  switch (spec.kind) {
    case "fixed":
      out.push(...spec.bytes);
      break;
    case "fixed-imm8":
      if (i.op !== "out-imm8-al") throw new EncodeError(`op ${i.op} has no imm8 operand`);
      out.push(...spec.bytes, i.port);
      break;
    case "opreg-imm64": {
      if (i.op !== "mov-r64-imm64") throw new EncodeError(`op ${i.op} is not MOV r64, imm64`);
      if (encodingForm(i) === "rex2") out.push(0xd5, rex2Payload(0, 1, 0, 0, i.dst));
      else out.push(rexByte(1, 0, 0, i.dst));
      out.push(spec.opcode + (i.dst & 7));
      let v = i.imm;
      for (let k = 0; k < 8; k++) {
        out.push(Number(v & 0xffn));
        v >>= 8n;
      }
      break;
    }
    case "modrm-w": {
      let reg: number;
      let rmReg = 0;
      let mem: MemOperand | undefined;
      if (i.op === "mov-r64-r64") {
        reg = i.src;
        rmReg = i.dst;
      } else if (i.op === "mov-m64-r64") {
        reg = i.src;
        mem = i.mem;
      } else if (i.op === "mov-r64-m64") {
        reg = i.dst;
        mem = i.mem;
      } else throw new EncodeError(`op ${i.op} is not a MOV with ModRM`);
      const base = mem ? mem.base : rmReg;
      if (encodingForm(i) === "rex2") out.push(0xd5, rex2Payload(0, 1, reg, 0, base));
      else out.push(rexByte(1, reg, 0, base));
      out.push(spec.opcode);
      if (mem) out.push(...memBytes(reg, mem));
      else out.push(0xc0 | ((reg & 7) << 3) | (rmReg & 7));
      break;
    }
    case "map1-digit-mem": {
      if (i.op !== "xsave" && i.op !== "xrstor") throw new EncodeError(`op ${i.op} has no memory operand`);
      const form = encodingForm(i);
      if (form === "rex2") out.push(0xd5, rex2Payload(1, 0, 0, 0, i.mem.base), spec.opcode);
      else {
        if (form === "rex") out.push(rexByte(0, 0, 0, i.mem.base));
        out.push(0x0f, spec.opcode);
      }
      out.push(...memBytes(spec.digit, i.mem));
      break;
    }
    case "evex-map4-nd": {
      if (i.op !== "push2" && i.op !== "pop2") throw new EncodeError(`op ${i.op} is not PUSH2/POP2`);
      const v = i.first;
      const p1 = (((~v) & 0xf) << 3) | 0x04; // W0, vvvv̄, U=1, pp=00
      const p2 = 0x10 | ((bit(v, 4) ^ 1) << 3); // ND=1, V̄4
      out.push(0x62, evexP0(i.second, 4), p1, p2, spec.opcode, 0xc0 | (spec.digit << 3) | (i.second & 7));
      break;
    }
    case "map7-imm32": {
      let reg: number;
      let msr: number;
      if (i.op === "rdmsr-imm") {
        reg = i.dst;
        msr = i.msr;
      } else if (i.op === "wrmsrns-imm") {
        reg = i.src;
        msr = i.msr;
      } else throw new EncodeError(`op ${i.op} is not an MSR-immediate form`);
      if (reg >= 16) {
        // EVEX map 7: P1 = W0 vvvv̄=1111 U=1 pp; P2 = 0x08 (V̄4=1, ND=0). [2nd] by analogy with URDMSR/UWRMSR.
        out.push(0x62, evexP0(reg, 7), 0x7c | spec.pp, 0x08);
      } else {
        // VEX 3-byte: C4 [R̄ X̄ B̄ 00111] [W0 1111 L0 pp].
        out.push(0xc4, 0xc0 | ((bit(reg, 3) ^ 1) << 5) | 7, 0x78 | spec.pp);
      }
      out.push(spec.opcode, 0xc0 | (reg & 7));
      pushU32(out, msr);
      break;
    }
  }
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------------
// Decoder

export interface Decoded {
  insn: Instruction;
  length: number;
}

class Cursor {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly start: number,
  ) {}
  u8(): number {
    const b = this.bytes[this.pos];
    if (b === undefined) throw new DecodeError("instruction is truncated", "truncated", this.pos);
    this.pos++;
    return b;
  }
  u32(): number {
    const v = this.u8() | (this.u8() << 8) | (this.u8() << 16) | (this.u8() << 24);
    return v >>> 0;
  }
  i8(): number {
    const b = this.u8();
    return b >= 0x80 ? b - 0x100 : b;
  }
  i32(): number {
    return this.u32() | 0;
  }
  unsupported(what: string): never {
    throw new DecodeError(`${what} is not in kvmx's instruction subset`, "unsupported", this.start);
  }
  invalid(what: string): never {
    throw new DecodeError(`${what} is an invalid encoding (#UD)`, "invalid", this.start);
  }
}

/** Register/memory extension bits gathered from REX, REX2, VEX or EVEX. */
interface Ext {
  w: number;
  r: number; // bits to OR into ModRM.reg (8, 16, 24)
  b: number; // bits to OR into ModRM.rm / SIB.base / opcode reg
  x: number;
}

function decodeModrm(c: Cursor, ext: Ext): { mod: number; reg: number; rm: number; mem?: MemOperand } {
  const modrm = c.u8();
  const mod = modrm >> 6;
  const reg = ((modrm >> 3) & 7) | ext.r;
  const low = modrm & 7;
  if (mod === 3) return { mod, reg, rm: low | ext.b };
  let baseLow = low;
  if (low === 4) {
    const sib = c.u8();
    const index = ((sib >> 3) & 7) | ext.x;
    if (index !== 4 || (sib >> 6) !== 0) c.unsupported("a scaled index");
    baseLow = sib & 7;
    if (baseLow === 5 && mod === 0) c.unsupported("a SIB without base");
  } else if (low === 5 && mod === 0) c.unsupported("RIP-relative addressing");
  const disp = mod === 1 ? c.i8() : mod === 2 ? c.i32() : 0;
  // Only canonical forms round-trip: [rbp] is written with disp8 0, small displacements as disp8.
  if (mod === 2 && disp >= -128 && disp <= 127) c.unsupported("a disp32 that fits disp8 (non-canonical form)");
  if (mod === 1 && disp === 0 && baseLow !== 5) c.unsupported("a zero disp8 (non-canonical form)");
  return { mod, reg, rm: -1, mem: { base: baseLow | ext.b, disp } };
}

function decodeMap0(c: Cursor, op: number, ext: Ext, rex2: boolean): Instruction {
  const flag = rex2 ? { rex2: true as const } : {};
  if (op >= 0xb8 && op <= 0xbf) {
    if (!ext.w) c.unsupported("MOV r32, imm32");
    let imm = 0n;
    for (let k = 0; k < 8; k++) imm |= BigInt(c.u8()) << BigInt(8 * k);
    const dst = (op & 7) | ext.b;
    return { op: "mov-r64-imm64", dst, imm, ...(rex2 && dst < 16 ? flag : {}) };
  }
  if (op === 0x89 || op === 0x8b) {
    if (!ext.w) c.unsupported("a 32-bit MOV");
    const m = decodeModrm(c, ext);
    let insn: Instruction;
    if (!m.mem) insn = op === 0x89 ? { op: "mov-r64-r64", dst: m.rm, src: m.reg } : { op: "mov-r64-r64", dst: m.reg, src: m.rm };
    else insn = op === 0x89 ? { op: "mov-m64-r64", mem: m.mem, src: m.reg } : { op: "mov-r64-m64", dst: m.reg, mem: m.mem };
    return rex2 && !touchesEgpr(insn) ? { ...insn, rex2: true } : insn;
  }
  return c.unsupported(`opcode ${hex2(op)}`);
}

function decodeMap1Mem(c: Cursor, op: number, ext: Ext, rex2: boolean): Instruction {
  if (op !== 0xae) c.unsupported(`opcode 0F ${hex2(op)}`);
  if (ext.w) c.unsupported("XSAVE64/XRSTOR64");
  const m = decodeModrm(c, ext);
  if (!m.mem) c.unsupported("0F AE with a register operand");
  const digit = m.reg & 7;
  const base = m.mem;
  let insn: Instruction;
  if (digit === 4) insn = { op: "xsave", mem: base };
  else if (digit === 5) insn = { op: "xrstor", mem: base };
  else return c.unsupported(`0F AE /${digit}`);
  return rex2 && base.base < 16 ? { ...insn, rex2: true } : insn;
}

/** Fixed-byte ops (no prefix) found by the table. */
function decodeFixed(c: Cursor, first: number): Instruction | undefined {
  for (const op of INSTRUCTION_OPS) {
    const e = INSTRUCTIONS[op].encoding;
    if ((e.kind !== "fixed" && e.kind !== "fixed-imm8") || e.bytes[0] !== first) continue;
    let ok = true;
    for (let k = 1; k < e.bytes.length; k++) {
      const b = c.bytes[c.start + k];
      if (b === undefined) throw new DecodeError("instruction is truncated", "truncated", c.start + k);
      if (b !== e.bytes[k]) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    c.pos = c.start + e.bytes.length;
    if (e.kind === "fixed-imm8") return { op: "out-imm8-al", port: c.u8() };
    return { op } as Instruction;
  }
  return undefined;
}

const hex2 = (b: number): string => b.toString(16).toUpperCase().padStart(2, "0");

/**
 * Decodes one instruction of the subset at `offset`. `mode` matters: REX, REX2 (0xD5), VEX (0xC4)
 * and EVEX (0x62) exist only in 64-bit mode (elsewhere those bytes are INC/DEC, AAD, LES, BOUND,
 * none of which are in the subset). Throws DecodeError ("truncated" | "unsupported" | "invalid").
 */
export function decode(bytes: Uint8Array, offset = 0, mode: CpuMode = "long64"): Decoded {
  const c = new Cursor(bytes, offset, offset);
  const b0 = c.u8();
  const long = mode === "long64";
  const fixed = decodeFixed(c, b0);
  // Fixed forms valid only in 64-bit mode (TILELOADD's C4 is LES elsewhere) do not decode outside it.
  if (fixed && (long || !INSTRUCTIONS[fixed.op].longModeOnly)) {
    return { insn: fixed, length: c.pos - offset };
  }
  if (!long) {
    // Memory operands use 16/32-bit addressing outside 64-bit mode, which the subset does not model.
    if (b0 === 0x0f && c.bytes[c.pos] === 0xae) c.unsupported(`XSAVE/XRSTOR with ${mode}-mode addressing`);
    return c.unsupported(`opcode ${hex2(b0)} in ${mode} mode`);
  }
  if (b0 >= 0x40 && b0 <= 0x4f) {
    const ext: Ext = { w: bit(b0, 3), r: bit(b0, 2) << 3, x: bit(b0, 1) << 3, b: bit(b0, 0) << 3 };
    const op = c.u8();
    if (op === 0xd5) c.invalid("REX followed by REX2");
    if (op >= 0x40 && op <= 0x4f) c.unsupported("two REX prefixes");
    if (op === 0x0f) return done(c, offset, decodeMap1Mem(c, c.u8(), ext, false));
    return done(c, offset, decodeMap0(c, op, ext, false));
  }
  if (b0 === 0xd5) {
    const p = c.u8();
    const ext: Ext = {
      w: bit(p, 3),
      r: (bit(p, 6) << 4) | (bit(p, 2) << 3),
      x: (bit(p, 5) << 4) | (bit(p, 1) << 3),
      b: (bit(p, 4) << 4) | (bit(p, 0) << 3),
    };
    const op = c.u8();
    if (bit(p, 7)) return done(c, offset, decodeMap1Mem(c, op, ext, true));
    return done(c, offset, decodeMap0(c, op, ext, true));
  }
  if (b0 === 0x0f) {
    const op = c.u8();
    return done(c, offset, decodeMap1Mem(c, op, { w: 0, r: 0, b: 0, x: 0 }, false));
  }
  if (b0 === 0xc4) {
    const v1 = c.u8();
    const v2 = c.u8();
    if ((v1 & 0x1f) !== 7) c.unsupported(`VEX map ${v1 & 0x1f}`);
    if ((v2 & 0xfc) !== 0x78) c.unsupported("a VEX form other than .128.W0 with vvvv=1111");
    if (bit(v1, 7) === 0 || bit(v1, 6) === 0) c.unsupported("VEX.R/X set on an MSR-immediate form");
    const reg = (c.u8() === 0xf6 ? 0 : c.unsupported("VEX map 7 opcode")) | ((bit(v1, 5) ^ 1) << 3);
    return done(c, offset, decodeMsrImm(c, v2 & 3, reg));
  }
  if (b0 === 0x62) {
    const p0 = c.u8();
    const p1 = c.u8();
    const p2 = c.u8();
    const map = p0 & 7;
    const rm = ((bit(p0, 5) ^ 1) << 3) | (bit(p0, 3) << 4);
    if (map === 4) {
      const op = c.u8();
      const modrm = c.u8();
      if (modrm >> 6 !== 3) c.unsupported("EVEX map 4 with a memory operand");
      if (bit(p1, 7)) c.unsupported("PUSH2P/POP2P (EVEX.W=1)");
      if ((p1 & 3) !== 0 || bit(p1, 2) !== 1) c.unsupported("EVEX map 4 with pp≠0 or U=0");
      if (bit(p2, 4) !== 1) c.invalid("PUSH2/POP2 with ND=0");
      if ((p2 & 0xe7) !== 0) c.unsupported("EVEX map 4 with z/L/aaa bits set");
      if ((p0 & 0xd0) !== 0xd0) c.unsupported("EVEX R/X bits on PUSH2/POP2");
      const first = (((p1 >> 3) & 0xf) ^ 0xf) | ((bit(p2, 3) ^ 1) << 4);
      const second = (modrm & 7) | rm;
      const digit = (modrm >> 3) & 7;
      const insn: Instruction | undefined =
        op === 0xff && digit === 6 ? { op: "push2", first, second } :
        op === 0x8f && digit === 0 ? { op: "pop2", first, second } : undefined;
      if (!insn) return c.unsupported(`EVEX map 4 opcode ${hex2(op)} /${digit}`);
      return { insn, length: c.pos - offset };
    }
    if (map === 7) {
      if ((p1 & 0xfc) !== 0x7c || p2 !== 0x08) c.unsupported("an EVEX map 7 form other than .128.W0");
      if ((p0 & 0xd0) !== 0xd0) c.unsupported("EVEX R/X bits on an MSR-immediate form");
      if (c.u8() !== 0xf6) c.unsupported("EVEX map 7 opcode");
      return done(c, offset, decodeMsrImm(c, p1 & 3, rm));
    }
    return c.unsupported(`EVEX map ${map}`);
  }
  return done(c, offset, decodeMap0(c, b0, { w: 0, r: 0, b: 0, x: 0 }, false));
}

function decodeMsrImm(c: Cursor, pp: number, ext: number): Instruction {
  const modrm = c.u8();
  if (modrm >> 6 !== 3 || ((modrm >> 3) & 7) !== 0) c.unsupported("an MSR-immediate form without mod=3 /0");
  const reg = (modrm & 7) | ext;
  const msr = c.u32();
  if (pp === 3) return { op: "rdmsr-imm", dst: reg, msr };
  if (pp === 2) return { op: "wrmsrns-imm", src: reg, msr };
  return c.unsupported(`map 7 F6 with pp=${pp}`);
}

function done(c: Cursor, offset: number, insn: Instruction): Decoded {
  return { insn, length: c.pos - offset };
}

/** Intel-syntax text for traces and the CLI, e.g. `mov r16, rax`, `push2 r17, r16`. */
export function formatInstruction(i: Instruction): string {
  const r = (n: number) => GPR_NAMES[n] ?? `r?${n}`;
  const m = (x: MemOperand) => `[${r(x.base)}${x.disp === 0 ? "" : x.disp < 0 ? ` - ${-x.disp}` : ` + ${x.disp}`}]`;
  switch (i.op) {
    case "mov-r64-imm64":
      return `mov ${r(i.dst)}, 0x${i.imm.toString(16)}`;
    case "mov-r64-r64":
      return `mov ${r(i.dst)}, ${r(i.src)}`;
    case "mov-m64-r64":
      return `mov qword ${m(i.mem)}, ${r(i.src)}`;
    case "mov-r64-m64":
      return `mov ${r(i.dst)}, qword ${m(i.mem)}`;
    case "push2":
    case "pop2":
      return `${i.op} ${r(i.first)}, ${r(i.second)}`;
    case "rdmsr-imm":
      return `rdmsr ${r(i.dst)}, 0x${i.msr.toString(16)}`;
    case "wrmsrns-imm":
      return `wrmsrns 0x${i.msr.toString(16)}, ${r(i.src)}`;
    case "out-imm8-al":
      return `out 0x${i.port.toString(16)}, al`;
    case "out-dx-al":
      return "out dx, al";
    case "xsave":
    case "xrstor":
      return `${i.op} ${m(i.mem)}`;
    case "mov-cr3-rax":
    case "mov-rax-cr3":
    case "mov-dr6-rax":
    case "mov-rax-dr6": {
      const [, dst, src] = i.op.split("-");
      return `mov ${dst}, ${src}`;
    }
    case "tileloadd":
      return "tileloadd tmm1, [rax + rcx*8]";
    default:
      return i.op;
  }
}
