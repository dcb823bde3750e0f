import type { CpuMode, PhysicalCpu } from "@kvmx/core";

/**
 * The few instruction forms the guest assembler (src/guest/assembler.ts) emits as raw bytes because
 * core's instruction table lacks them: MOV AL imm8, JMP rel8/rel32, JNZ rel32, DEC r64, NOP, UD2;
 * and, with 16- and 32-bit operand sizes (the mode's default, flipped by a 0x66 prefix), MOV r16/r32
 * imm and OUT of 2 or 4 bytes (E7 ib, EF) — what real-mode and legacy guest code needs. The model
 * executes them here so the guest programs run end to end; everything else outside core's table
 * stays "outside the subset" (KVM_EXIT_INTERNAL_ERROR).
 */
export type ExtraInsn =
  | { readonly op: "mov-al-imm8"; readonly imm: number; readonly length: number }
  | { readonly op: "mov-imm"; readonly reg: number; readonly size: 2 | 4; readonly imm: number; readonly length: number }
  | { readonly op: "out-eax"; readonly size: 2 | 4; readonly port: number | "dx"; readonly length: number }
  | { readonly op: "jmp"; readonly rel: number; readonly length: number }
  | { readonly op: "jnz"; readonly rel: number; readonly length: number }
  | { readonly op: "dec-r64"; readonly reg: number; readonly length: number }
  | { readonly op: "nop"; readonly length: number }
  | { readonly op: "ud2"; readonly length: number };

const i8 = (b: number): number => (b >= 0x80 ? b - 0x100 : b);
const i32 = (b: Uint8Array, at: number): number | undefined => {
  if (at + 4 > b.length) return undefined;
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) | 0;
};

const u16 = (b: Uint8Array, at: number): number | undefined => (at + 2 > b.length ? undefined : b[at]! | (b[at + 1]! << 8));

/**
 * Decodes one of the extra forms at the start of `b`, or undefined. `operand32` is the mode's default
 * operand size (real mode and 16-bit code segments: 16; 32- and 64-bit code: 32).
 */
export function decodeExtra(b: Uint8Array, mode: CpuMode, operand32 = mode !== "real"): ExtraInsn | undefined {
  let b0 = b[0];
  if (b0 === undefined) return undefined;
  // an operand-size prefix (0x66) flips 16 ⇄ 32 for the forms below
  const prefixed = b0 === 0x66 ? 1 : 0;
  if (prefixed) {
    b0 = b[1];
    if (b0 === undefined) return undefined;
  }
  const size: 2 | 4 = operand32 !== (prefixed === 1) ? 4 : 2;
  if (b0 >= 0xb8 && b0 <= 0xbf && (mode !== "long64" || prefixed)) {
    const imm = size === 4 ? i32(b, 1 + prefixed) : u16(b, 1 + prefixed);
    if (imm !== undefined) return { op: "mov-imm", reg: b0 - 0xb8, size, imm: imm >>> 0, length: 1 + prefixed + size };
  }
  if (b0 === 0xe7 && b.length >= 2 + prefixed) return { op: "out-eax", size, port: b[1 + prefixed]!, length: 2 + prefixed };
  if (b0 === 0xef) return { op: "out-eax", size, port: "dx", length: 1 + prefixed };
  if (prefixed) return undefined;
  if (b0 === 0xb0 && b.length >= 2) return { op: "mov-al-imm8", imm: b[1]!, length: 2 };
  if (b0 === 0x90) return { op: "nop", length: 1 };
  if (b0 === 0xeb && b.length >= 2) return { op: "jmp", rel: i8(b[1]!), length: 2 };
  if (b0 === 0xe9 && mode !== "real") {
    const rel = i32(b, 1);
    return rel === undefined ? undefined : { op: "jmp", rel, length: 5 };
  }
  if (b0 === 0x0f && b[1] === 0x0b) return { op: "ud2", length: 2 };
  if (b0 === 0x0f && b[1] === 0x85 && mode !== "real") {
    const rel = i32(b, 2);
    return rel === undefined ? undefined : { op: "jnz", rel, length: 6 };
  }
  // REX.W (+B) FF /1 with mod=3: DEC r64 — 64-bit mode only (0x48 is DEC EAX elsewhere)
  if (mode === "long64" && (b0 === 0x48 || b0 === 0x49) && b[1] === 0xff && b[2] !== undefined && (b[2] & 0xf8) === 0xc8) {
    return { op: "dec-r64", reg: (b[2] & 7) | ((b0 & 1) << 3), length: 3 };
  }
  return undefined;
}

const FLAG = { CF: 1n, PF: 1n << 2n, AF: 1n << 4n, ZF: 1n << 6n, SF: 1n << 7n, OF: 1n << 11n } as const;

function parity8(v: bigint): boolean {
  let x = Number(v & 0xffn);
  x ^= x >> 4;
  x ^= x >> 2;
  x ^= x >> 1;
  return (x & 1) === 0;
}

/** An OUT the guest executed: KVM exits to userspace with these bytes (RIP stays on the OUT). */
export interface ExtraOut {
  readonly port: number;
  readonly size: 1 | 2 | 4;
  readonly data: Uint8Array;
}

/**
 * Executes `x` on `cpu` (RIP included). Returns "UD" when the instruction raises #UD (UD2), an
 * ExtraOut for an OUT (executed by KVM's exit, not here: RIP is left on it).
 */
export function executeExtra(cpu: PhysicalCpu, x: ExtraInsn): "ok" | "UD" | ExtraOut {
  const next = cpu.rip + BigInt(x.length);
  switch (x.op) {
    case "mov-imm": {
      // a 16-bit MOV keeps the rest of the register; a 32-bit one zero-extends (in 64-bit mode too)
      const old = cpu.gpr(x.reg);
      cpu.setGpr(x.reg, x.size === 2 ? (old & ~0xffffn) | BigInt(x.imm & 0xffff) : BigInt(x.imm >>> 0), cpu.gprTag(x.reg));
      break;
    }
    case "out-eax": {
      const port = x.port === "dx" ? Number(cpu.gpr(2) & 0xffffn) : x.port;
      const v = cpu.gpr(0);
      const data = Uint8Array.from({ length: x.size }, (_, k) => Number((v >> BigInt(8 * k)) & 0xffn));
      return { port, size: x.size, data };
    }
    case "mov-al-imm8": {
      const rax = cpu.gpr(0);
      cpu.setGpr(0, (rax & ~0xffn) | BigInt(x.imm), cpu.gprTag(0));
      break;
    }
    case "jmp":
      cpu.rip = BigInt.asUintN(64, next + BigInt(x.rel));
      return "ok";
    case "jnz":
      cpu.rip = (cpu.rflags & FLAG.ZF) === 0n ? BigInt.asUintN(64, next + BigInt(x.rel)) : next;
      return "ok";
    case "dec-r64": {
      const old = cpu.gpr(x.reg);
      const r = BigInt.asUintN(64, old - 1n);
      cpu.setGpr(x.reg, r, cpu.gprTag(x.reg));
      // DEC sets OF, SF, ZF, AF, PF and leaves CF alone (SDM DEC)
      let f = cpu.rflags & ~(FLAG.OF | FLAG.SF | FLAG.ZF | FLAG.AF | FLAG.PF);
      if (old === 1n << 63n) f |= FLAG.OF;
      if (r >> 63n) f |= FLAG.SF;
      if (r === 0n) f |= FLAG.ZF;
      if ((old & 0xfn) === 0n) f |= FLAG.AF;
      if (parity8(r)) f |= FLAG.PF;
      cpu.rflags = f;
      break;
    }
    case "nop":
      break;
    case "ud2":
      return "UD";
  }
  cpu.rip = next;
  return "ok";
}
