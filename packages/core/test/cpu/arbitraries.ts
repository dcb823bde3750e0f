import { fc } from "@fast-check/vitest";
import { insn, type Instruction } from "../../src/cpu/instructions.js";

const gpr = fc.integer({ min: 0, max: 31 });
const mem = fc.record({ base: gpr, disp: fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }) });
const rex2 = fc.option(fc.constant(true as const), { nil: undefined });

/** Every instruction of the subset, built from its constructor. */
export const arbInstruction: fc.Arbitrary<Instruction> = fc.oneof(
  fc.tuple(gpr, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), rex2).map(([d, i, r]) => insn.movImm(d, i, r)),
  fc.tuple(gpr, gpr, rex2).map(([d, s, r]) => insn.mov(d, s, r)),
  fc.tuple(mem, gpr, rex2).map(([m, s, r]) => insn.store(m, s, r)),
  fc.tuple(gpr, mem, rex2).map(([d, m, r]) => insn.load(d, m, r)),
  fc.tuple(gpr, gpr).map(([a, b]) => insn.push2(a, b)),
  fc.tuple(gpr, gpr).map(([a, b]) => insn.pop2(a, b)),
  fc.constantFrom(insn.xsetbv(), insn.xgetbv(), insn.rdmsr(), insn.wrmsr(), insn.cpuid(), insn.hlt(), insn.outDx(), insn.vmcall()),
  fc.tuple(gpr, fc.integer({ min: 0, max: 0xffff_ffff })).map(([d, m]) => insn.rdmsrImm(d, m)),
  fc.tuple(gpr, fc.integer({ min: 0, max: 0xffff_ffff })).map(([s, m]) => insn.wrmsrnsImm(m, s)),
  fc.integer({ min: 0, max: 255 }).map((p) => insn.outImm8(p)),
  fc.tuple(mem, rex2).map(([m, r]) => insn.xsave(m, r)),
  fc.tuple(mem, rex2).map(([m, r]) => insn.xrstor(m, r)),
);

