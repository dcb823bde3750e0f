import { GPR_NAMES, insn } from "@kvmx/core";
import type { GuestMemory, KvmRegs, Vcpu, Vm } from "../api.js";
import { zeroStruct } from "../structs/codec.js";
import { Assembler } from "./assembler.js";
import { GUEST_REPORT_PORT, LONG_MODE_LAYOUT, longModeSregs, longModeSystemImage, type LongModeOptions, type MemoryChunk } from "./long-mode.js";

/**
 * A guest program ready to load into any implementation of the Vm/Vcpu API (real or model):
 * the long-mode system image, the program bytes at LONG_MODE_LAYOUT.entry, and the initial RIP/RSP.
 */
export interface GuestProgram {
  readonly chunks: readonly MemoryChunk[];
  readonly entry: bigint;
  readonly stackTop: bigint;
  readonly options: LongModeOptions & { cpl?: 0 | 3 };
}

/** Guest memory every program gets: 2 MiB at guest-physical 0 (covers the image and the stack). */
export const GUEST_MEMORY_SIZE = 2 * 1024 * 1024;

/** Builds a long-mode program: `body` receives an assembler at the entry point. */
export function longModeProgram(body: (a: Assembler) => void, options: LongModeOptions & { cpl?: 0 | 3 } = {}): GuestProgram {
  const a = new Assembler(LONG_MODE_LAYOUT.entry);
  body(a);
  return {
    chunks: [...longModeSystemImage(options), { gpa: LONG_MODE_LAYOUT.entry, bytes: a.assemble() }],
    entry: LONG_MODE_LAYOUT.entry,
    stackTop: LONG_MODE_LAYOUT.stackTop,
    options,
  };
}

/** Maps guest memory, writes the image and puts the vCPU in 64-bit mode at the entry point. */
export function loadGuestProgram(vm: Vm, vcpu: Vcpu, program: GuestProgram, memory?: GuestMemory): GuestMemory {
  const mem = memory ?? vm.addMemory(0, 0n, GUEST_MEMORY_SIZE);
  for (const c of program.chunks) mem.write(c.gpa, c.bytes);
  vcpu.setSregs(longModeSregs(vcpu.getSregs(), program.options));
  const regs: KvmRegs = { ...zeroStruct("kvm_regs"), rip: program.entry, rsp: program.stackTop, rflags: 0x2n };
  vcpu.setRegs(regs);
  return mem;
}

// ---------------------------------------------------------------------------------------------
// Programs the tests and benches run.

/** GPR indices in hardware order, from core's GPR_NAMES. */
const GPR = { rax: GPR_NAMES.indexOf("rax"), rcx: GPR_NAMES.indexOf("rcx"), rdx: GPR_NAMES.indexOf("rdx"), r8: GPR_NAMES.indexOf("r8") } as const;

/** Sets EAX:EDX:ECX for XSETBV(0, xcr0), executes it, reports AL=1 on GUEST_REPORT_PORT, halts. */
export function xsetbvProgram(xcr0: bigint): GuestProgram {
  return longModeProgram((a) => {
    a.insn(insn.movImm(GPR.rcx, 0n))
      .insn(insn.movImm(GPR.rax, xcr0 & 0xffffffffn))
      .insn(insn.movImm(GPR.rdx, xcr0 >> 32n))
      .insn(insn.xsetbv())
      .movAl(1)
      .insn(insn.outImm8(GUEST_REPORT_PORT))
      .insn(insn.hlt());
  });
}

/** Loads each register with its value (RIP-relative nothing: MOV r64, imm64), reports, halts. */
export function movProgram(values: ReadonlyMap<number, bigint>, options: LongModeOptions & { cpl?: 0 | 3 } = {}): GuestProgram {
  return longModeProgram((a) => {
    for (const [reg, v] of values) a.insn(insn.movImm(reg, v));
    a.movAl(2).insn(insn.outImm8(GUEST_REPORT_PORT)).insn(insn.hlt());
  }, options);
}

/** Executes CPUID `iterations` times (each an exit handled inside KVM), then reports and halts. */
export function cpuidLoopProgram(iterations: bigint): GuestProgram {
  return longModeProgram((a) => {
    a.insn(insn.movImm(GPR.r8, iterations))
      .label("loop")
      .insn(insn.movImm(GPR.rax, 0n))
      .insn(insn.movImm(GPR.rcx, 0n))
      .insn(insn.cpuid())
      .dec(GPR.r8)
      .jnz("loop")
      .movAl(3)
      .insn(insn.outImm8(GUEST_REPORT_PORT))
      .insn(insn.hlt());
  });
}

/** OUTs AL to GUEST_REPORT_PORT forever: one userspace exit per iteration (the KVM_RUN round-trip bench). */
export function outLoopProgram(): GuestProgram {
  return longModeProgram((a) => {
    a.label("loop").movAl(4).insn(insn.outImm8(GUEST_REPORT_PORT)).jmp("loop");
  });
}

/**
 * A deliberate fault: #UD from UD2, or from an APX MOV into R16 when XCR0.APX is off. Runs at CPL3 by default
 * so the fault is raised by the CPU itself (on kvm_pvm hosts CPL0 code is emulated,
 * docs/facts.md#quirk-emulated-cpl0); the CPL0 IDT stub then reports the vector.
 */
export function faultProgram(kind: "ud2" | "egpr-mov", options: LongModeOptions & { cpl?: 0 | 3 } = { cpl: 3 }): GuestProgram {
  return longModeProgram((a) => {
    if (kind === "ud2") a.ud2();
    else a.insn(insn.movImm(16, 0x1234n));
    a.insn(insn.hlt());
  }, options);
}
