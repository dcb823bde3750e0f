/**
 * THE executor: the hardware's rules for the instruction subset (instructions.ts), applied to a
 * PhysicalCpu. Every site of every design runs its instructions through `execute`, so #UD/#GP rules
 * are stated once, here, and never re-stated per design.
 *
 * Order of checks mirrors the SDM's "relative priority of faults and VM exits": #UD (mode, APX gate,
 * CR4.OSXSAVE, invalid operands) and CPL/I/O-permission #GP come before an intercept's VM exit; all
 * other #GP/#SS (XCR0 value rules, unknown MSRs, alignment, canonical addresses) come after it,
 * because the hypervisor emulates them (docs/facts.md#xsetbv: CR4.OSXSAVE=0 → #UD before any exit).
 */
import { DEFAULT_MODEL_OPTIONS, type ModelOptions } from "../model-options.js";
import { CPUID_FEATURE, type CpuidFeatureName, type CpuidResult } from "./cpuid.js";
import { EGPR_FIRST, NR_GPRS } from "./gpr.js";
import { INSTRUCTIONS, apxEncoded, type Instruction, type MemOperand } from "./instructions.js";
import type { PhysicalCpu } from "./physical-cpu.js";
import { Tag, type ProvenanceTag } from "./provenance.js";
import { archXsetbvCheck, describeXcr0Rule } from "./xcr0-rules.js";
import { XFEATURE, XFEATURE_MASK, XFEATURE_MASK_XTILE } from "./xfeatures.js";
import { VALUES, val, valLow, vid, wordId, wordTag } from "./values.js";

export type FaultVector = "UD" | "GP" | "SS" | "NM";

/**
 * What executing one instruction did. "exit": the instruction was intercepted (env.intercepts) and
 * caused a VM exit before changing any state; `reason` is the instruction's op (e.g. "xsetbv",
 * "wrmsrns-imm"), which the vendor backend maps to its exit reason.
 */
export type ExecOutcome =
  | { kind: "ok"; halted?: true }
  | { kind: "fault"; vector: FaultVector; reason: string }
  | { kind: "exit"; reason: string };

/** A 64-bit memory word with the provenance tag of the value stored in it (for environments that keep bigints). */
export interface TaggedWord {
  value: bigint;
  tag: ProvenanceTag;
}

/**
 * What the world around the CPU supplies to the executor. Memory is addressed as (base, offset): the
 * value id (values.ts) of the base register and a byte offset, so a run of accesses into one area
 * (XSAVE, a GPR block) needs no 64-bit arithmetic; `val(base) + BigInt(off)` is the linear address.
 * Words travel as `word(id, tag)`.
 */
export interface ExecEnv {
  /** Whose code runs: the tag given to values an instruction creates (immediates, MSR/CPUID/XGETBV results). */
  readonly actor: ProvenanceTag;
  /** The word at val(base) + off (8-byte granular) as word(id, tag); never-written memory reads as 0 with Tag.init. */
  load(base: number, off: number): number;
  store(base: number, off: number, id: number, tag: ProvenanceTag): void;
  /** MSR read; undefined means the MSR does not exist (#GP). */
  rdmsr(index: number): bigint | undefined;
  /** MSR write; false means the MSR or the value is rejected (#GP). */
  wrmsr(index: number, value: bigint): boolean;
  /** The CPUID this CPU reports (used for CPUID itself and for feature checks: MSR_IMM, XGETBV ECX=1, XCR0 mask). */
  cpuid(leaf: number, subleaf: number): CpuidResult;
  /** Port output (OUT). */
  out?(port: number, value: number): void;
  /**
   * Present when the CPU runs a guest (VMX non-root / SVM guest mode): true when `insn` is intercepted.
   * VMCALL #UDs unless intercepted (it only means something to a hypervisor).
   */
  intercepts?(insn: Instruction): boolean;
  /** Model assumptions (ASSUMPTIONS table); DEFAULT_MODEL_OPTIONS when absent. */
  readonly options?: ModelOptions;
}

/** A CPUID feature bit as this CPU (env) reports it. */
function envHas(env: ExecEnv, name: CpuidFeatureName): boolean {
  const f = CPUID_FEATURE[name];
  return ((env.cpuid(f.leaf, f.subleaf)[f.reg] >>> f.bit) & 1) === 1;
}

/** CPUID.(0xD,0) EDX:EAX: the XCR0 bits XSETBV accepts on this CPU. */
function envSupportedXcr0(env: ExecEnv): bigint {
  const r = env.cpuid(0xd, 0);
  return (BigInt(r.edx >>> 0) << 32n) | BigInt(r.eax >>> 0);
}

const ud = (reason: string): ExecOutcome => ({ kind: "fault", vector: "UD", reason });
const gp = (reason: string): ExecOutcome => ({ kind: "fault", vector: "GP", reason });
const ss = (reason: string): ExecOutcome => ({ kind: "fault", vector: "SS", reason });
const nm = (reason: string): ExecOutcome => ({ kind: "fault", vector: "NM", reason });
const OK: ExecOutcome = { kind: "ok" };
const HALTED: ExecOutcome = { kind: "ok", halted: true };
const cpuRflagsId = (cpu: PhysicalCpu): number => cpu.rflagsId;

const RAX = 0, RCX = 1, RDX = 2, RSP = 4, RBP = 5;
const MASK32 = 0xffff_ffffn;
const XSAVE_HEADER = 512;

/** 48-bit canonical check (LA57 is not modelled). */
const isCanonical = (addr: bigint): boolean => {
  const top = addr >> 47n;
  return top === 0n || top === (1n << 17n) - 1n;
};

/**
 * Whether [base + disp, base + disp + span) is canonical. Host code addresses a handful of areas over
 * and over, so per base value it is remembered whether every access within ±8 KiB of it is canonical
 * (1) or not all are (2: checked exactly) — 64-bit arithmetic only the first time a base is seen.
 */
const nearCanonical: number[] = [];
const NEAR = 8192;
function canonicalRange(baseId: number, disp: number, span: number): boolean {
  let near = nearCanonical[baseId];
  if (near === undefined) {
    const b = val(baseId);
    near = nearCanonical[baseId] = isCanonical(BigInt.asUintN(64, b - BigInt(NEAR))) && isCanonical(BigInt.asUintN(64, b + BigInt(NEAR))) && b >= BigInt(NEAR) ? 1 : 2;
  }
  if (near === 1 && disp >= -NEAR && disp + span <= NEAR) return true;
  const lo = BigInt.asUintN(64, val(baseId) + BigInt(disp));
  return isCanonical(lo) && isCanonical(BigInt.asUintN(64, lo + BigInt(Math.max(span, 1) - 1)));
}

const effectiveAddress = (cpu: PhysicalCpu, m: MemOperand): bigint => BigInt.asUintN(64, cpu.gpr(m.base) + BigInt(m.disp));

/** #SS for stack-segment references (RSP/RBP base), #GP otherwise (SDM "64-bit mode exceptions"). */
const nonCanonical = (m: MemOperand, addr: bigint): ExecOutcome => {
  const what = `non-canonical address 0x${addr.toString(16)}`;
  return m.base === RSP || m.base === RBP ? ss(what) : gp(what);
};

function writeGprId(cpu: PhysicalCpu, index: number, id: number, tag: ProvenanceTag): void {
  cpu.setGprId(index, id, tag);
  // Writing an EGPR takes component 19 out of its init state as far as XINUSE goes (SDM 13.6).
  if (index >= EGPR_FIRST) cpu.markApxInUse();
}
const writeGpr = (cpu: PhysicalCpu, index: number, value: bigint, tag: ProvenanceTag): void => writeGprId(cpu, index, vid(value), tag);

const edxEax = (cpu: PhysicalCpu): bigint => ((cpu.gpr(RDX) & MASK32) << 32n) | (cpu.gpr(RAX) & MASK32);

function writeEdxEax(cpu: PhysicalCpu, value: bigint, tag: ProvenanceTag): void {
  writeGpr(cpu, RAX, value & MASK32, tag);
  writeGpr(cpu, RDX, (value >> 32n) & MASK32, tag);
}

/** Standard-format offset of component 19: CPUID.(0xD,19).EBX when enumerated, else ASSUMPTIONS.apxStandardOffset. */
export function apxXsaveOffset(env: Pick<ExecEnv, "cpuid" | "options">): number {
  const ebx = env.cpuid(0xd, XFEATURE.APX).ebx;
  return ebx !== 0 ? ebx : Number((env.options ?? DEFAULT_MODEL_OPTIONS).apxStandardOffset);
}

/** The #UD checks that depend only on the encoding and the CPU's mode/CR4/XCR0 (before any VM exit). */
function decodeTimeFault(cpu: PhysicalCpu, i: Instruction, env: ExecEnv): ExecOutcome | undefined {
  const spec = INSTRUCTIONS[i.op];
  if (apxEncoded(i)) {
    // Access gate (docs/facts.md#apx-access-gate): REX2/APX-EVEX need 64-bit mode, CR4.OSXSAVE=1 and XCR0[19]=1.
    if (!cpu.long64) return ud(`APX encoding of ${spec.mnemonic} outside 64-bit mode`);
    if (!cpu.cr4Osxsave) return ud(`APX encoding of ${spec.mnemonic} with CR4.OSXSAVE=0`);
    if (!cpu.xcr0Apx) return ud(`APX encoding of ${spec.mnemonic} with XCR0.APX=0`);
  }
  if (spec.longModeOnly && !cpu.long64) return ud(`${spec.mnemonic} ${spec.operands} outside 64-bit mode`);
  switch (i.op) {
    case "push2":
    case "pop2":
      // ASSUMPTIONS.push2pop2Rules ("as-documented"): RSP operand, or POP2 into one register twice, is #UD.
      if (i.first === RSP || i.second === RSP) return ud(`${i.op} with RSP as an operand`);
      if (i.op === "pop2" && i.first === i.second) return ud("pop2 with two equal destination registers");
      return undefined;
    case "xsetbv":
    case "xgetbv":
    case "xsave":
    case "xrstor":
      if (!cpu.cr4Osxsave) return ud(`${i.op} with CR4.OSXSAVE=0`);
      return undefined;
    case "rdmsr-imm":
    case "wrmsrns-imm":
      if (!envHas(env, "MSR_IMM")) return ud(`${i.op} on a CPU without MSR_IMM`);
      return undefined;
    case "vmcall":
      if (!env.intercepts?.(i)) return ud("vmcall outside a guest that a hypervisor intercepts");
      return undefined;
    case "rdpkru":
    case "wrpkru":
      // docs/facts.md#pkru: RDPKRU/WRPKRU need CR4.PKE; XSAVE/XRSTOR reach PKRU through XCR0[9] alone.
      if (!cpu.cr4Pke) return ud(`${i.op} with CR4.PKE=0`);
      return undefined;
    case "tileloadd":
      if (!cpu.cr4Osxsave || (cpu.xcr0 & XFEATURE_MASK_XTILE) !== XFEATURE_MASK_XTILE) return ud("tileloadd without XCR0[17:18] (AMX tile state) enabled");
      return undefined;
    default:
      return undefined;
  }
}

/** Privilege checks that take priority over VM exits (CPL-0-only instructions, I/O permission). */
function privilegeFault(cpu: PhysicalCpu, i: Instruction): ExecOutcome | undefined {
  const spec = INSTRUCTIONS[i.op];
  if (spec.cpl0 && cpu.cpl > 0 && cpu.mode !== "real") return gp(`${spec.mnemonic} at CPL ${cpu.cpl}`);
  if (i.op === "out-imm8-al" || i.op === "out-dx-al") {
    const iopl = (valLow(cpuRflagsId(cpu)) >>> 12) & 3;
    // The TSS I/O permission bitmap is not modelled: CPL > IOPL always faults.
    if (cpu.mode !== "real" && cpu.cpl > iopl) return gp(`out at CPL ${cpu.cpl} > IOPL ${iopl}`);
  }
  return undefined;
}

/**
 * An instruction prepared for execution: its operands in one fixed shape (the typed instruction
 * union has a shape per op, and reading it on the hot path is slow), the immediate as a value id and
 * whether it uses an APX encoding. Host code builds its instructions once and runs the compiled form.
 */
export interface CompiledInstruction {
  readonly insn: Instruction;
  /** One of MOV_* below, or OTHER (executed from `insn`). */
  readonly code: number;
  /** Register operand: MOV destination (RI/RR/RM) or source (MR). */
  readonly reg: number;
  /** Second register: MOV RR source, memory base for MR/RM. */
  readonly reg2: number;
  readonly disp: number;
  /** Value id of the MOV RI immediate. */
  readonly imm: number;
  readonly apx: boolean;
  /** The outcome when a guest's intercept turns it into a VM exit. */
  readonly exit: ExecOutcome;
}
const MOV_RI = 1, MOV_RR = 2, MOV_MR = 3, MOV_RM = 4, OTHER = 0;
const COMPILED = new WeakMap<Instruction, CompiledInstruction>();

/** The compiled form of `i` (cached per instruction object). */
export function compileInstruction(i: Instruction): CompiledInstruction {
  let c = COMPILED.get(i);
  if (c) return c;
  let code = OTHER, reg = 0, reg2 = 0, disp = 0, imm = 0;
  switch (i.op) {
    case "mov-r64-imm64":
      [code, reg, imm] = [MOV_RI, i.dst, vid(i.imm)];
      break;
    case "mov-r64-r64":
      [code, reg, reg2] = [MOV_RR, i.dst, i.src];
      break;
    case "mov-m64-r64":
      [code, reg, reg2, disp] = [MOV_MR, i.src, i.mem.base, i.mem.disp];
      break;
    case "mov-r64-m64":
      [code, reg, reg2, disp] = [MOV_RM, i.dst, i.mem.base, i.mem.disp];
      break;
    default:
      break;
  }
  c = { insn: i, code, reg, reg2, disp, imm, apx: apxEncoded(i), exit: { kind: "exit", reason: i.op } };
  COMPILED.set(i, c);
  return c;
}

/**
 * Executes one instruction on `cpu` (mutated in place) with the hardware's rules. Never throws for
 * architectural conditions: faults and VM exits are outcomes.
 */
export function execute(cpu: PhysicalCpu, i: Instruction, env: ExecEnv): ExecOutcome {
  return executeCompiled(cpu, compileInstruction(i), env);
}

/** `execute` for a compiled instruction (the hot path: MOVs outside a guest run without looking at `insn`). */
export function executeCompiled(cpu: PhysicalCpu, c: CompiledInstruction, env: ExecEnv): ExecOutcome {
  const code = c.code;
  if (code !== OTHER && env.intercepts === undefined) {
    // MOVs outside a guest: the only decode-time rules are 64-bit mode and the APX gate.
    if (!cpu.long64 || (c.apx && (!cpu.cr4Osxsave || !cpu.xcr0Apx))) return decodeTimeFault(cpu, c.insn, env) ?? OK;
    if (code === MOV_RM) {
      const base = cpu.gprId(c.reg2);
      if (!canonicalRange(base, c.disp, 8)) return nonCanonical(MEM_OF(c), effectiveAddress(cpu, MEM_OF(c)));
      const w = env.load(base, c.disp);
      writeGprId(cpu, c.reg, wordId(w), wordTag(w));
    } else if (code === MOV_MR) {
      const base = cpu.gprId(c.reg2);
      if (!canonicalRange(base, c.disp, 8)) return nonCanonical(MEM_OF(c), effectiveAddress(cpu, MEM_OF(c)));
      env.store(base, c.disp, cpu.gprId(c.reg), cpu.gprTag(c.reg));
    } else if (code === MOV_RI) {
      writeGprId(cpu, c.reg, c.imm, env.actor);
    } else {
      writeGprId(cpu, c.reg, cpu.gprId(c.reg2), cpu.gprTag(c.reg2));
    }
    return OK;
  }
  const i = c.insn;
  const early = decodeTimeFault(cpu, i, env) ?? privilegeFault(cpu, i);
  if (early) return early;
  if (env.intercepts?.(i)) return c.exit;
  return executeOp(cpu, i, env);
}
const MEM_OF = (c: CompiledInstruction): MemOperand => ({ base: c.reg2, disp: c.disp });

function executeOp(cpu: PhysicalCpu, i: Instruction, env: ExecEnv): ExecOutcome {
  const opts = env.options ?? DEFAULT_MODEL_OPTIONS;

  switch (i.op) {
    case "mov-r64-imm64":
      writeGpr(cpu, i.dst, i.imm, env.actor);
      return OK;
    case "mov-r64-r64":
      writeGprId(cpu, i.dst, cpu.gprId(i.src), cpu.gprTag(i.src));
      return OK;
    case "mov-m64-r64": {
      if (!canonicalRange(cpu.gprId(i.mem.base), i.mem.disp, 8)) return nonCanonical(i.mem, effectiveAddress(cpu, i.mem));
      env.store(cpu.gprId(i.mem.base), i.mem.disp, cpu.gprId(i.src), cpu.gprTag(i.src));
      return OK;
    }
    case "mov-r64-m64": {
      if (!canonicalRange(cpu.gprId(i.mem.base), i.mem.disp, 8)) return nonCanonical(i.mem, effectiveAddress(cpu, i.mem));
      const w = env.load(cpu.gprId(i.mem.base), i.mem.disp);
      writeGprId(cpu, i.dst, wordId(w), wordTag(w));
      return OK;
    }
    case "push2":
    case "pop2":
      return pushPop2(cpu, i, env);
    case "xsetbv": {
      const index = valLow(cpu.gprId(RCX));
      const value = edxEax(cpu);
      const failed = archXsetbvCheck(index, value, envSupportedXcr0(env));
      if (failed) return gp(`xsetbv: ${failed} (${describeXcr0Rule(failed)})`);
      cpu.loadXcr0(value, opts);
      return OK;
    }
    case "xgetbv": {
      const index = valLow(cpu.gprId(RCX));
      if (index === 0) writeEdxEax(cpu, cpu.xcr0, env.actor);
      else if (index === 1 && envHas(env, "XGETBV_ECX1")) writeEdxEax(cpu, cpu.xcr0 & cpu.xinuse, env.actor);
      else return gp(`xgetbv with ECX=${index}`);
      return OK;
    }
    case "rdmsr": {
      const msr = valLow(cpu.gprId(RCX));
      const v = env.rdmsr(msr);
      if (v === undefined) return gp(`rdmsr of unknown MSR 0x${msr.toString(16)}`);
      writeEdxEax(cpu, v, env.actor);
      return OK;
    }
    case "wrmsr": {
      const msr = valLow(cpu.gprId(RCX));
      if (!env.wrmsr(msr, edxEax(cpu))) return gp(`wrmsr to MSR 0x${msr.toString(16)} rejected`);
      return OK;
    }
    case "rdmsr-imm": {
      const v = env.rdmsr(i.msr);
      if (v === undefined) return gp(`rdmsr of unknown MSR 0x${i.msr.toString(16)}`);
      writeGpr(cpu, i.dst, v, env.actor);
      return OK;
    }
    case "wrmsrns-imm":
      if (!env.wrmsr(i.msr, cpu.gpr(i.src))) return gp(`wrmsrns to MSR 0x${i.msr.toString(16)} rejected`);
      return OK;
    case "cpuid": {
      const r = env.cpuid(valLow(cpu.gprId(RAX)), valLow(cpu.gprId(RCX)));
      writeGpr(cpu, RAX, BigInt(r.eax >>> 0), env.actor);
      writeGpr(cpu, 3, BigInt(r.ebx >>> 0), env.actor);
      writeGpr(cpu, RCX, BigInt(r.ecx >>> 0), env.actor);
      writeGpr(cpu, RDX, BigInt(r.edx >>> 0), env.actor);
      return OK;
    }
    case "hlt":
      return HALTED;
    case "out-imm8-al":
      env.out?.(i.port, valLow(cpu.gprId(RAX)) & 0xff);
      return OK;
    case "out-dx-al":
      env.out?.(valLow(cpu.gprId(RDX)) & 0xffff, valLow(cpu.gprId(RAX)) & 0xff);
      return OK;
    case "vmcall":
      // Reached only when intercepted is false, which decodeTimeFault already turned into #UD.
      return ud("vmcall outside a guest");
    case "xsave":
      return xsave(cpu, i.mem, env);
    case "xrstor":
      return xrstor(cpu, i.mem, env);
    case "rdpkru":
      if (valLow(cpu.gprId(RCX)) !== 0) return gp("rdpkru with ECX != 0");
      writeEdxEax(cpu, BigInt(cpu.pkru), env.actor);
      return OK;
    case "wrpkru":
      if (valLow(cpu.gprId(RCX)) !== 0 || valLow(cpu.gprId(RDX)) !== 0) return gp("wrpkru with ECX or EDX != 0");
      cpu.pkru = valLow(cpu.gprId(RAX));
      return OK;
    case "mov-cr3-rax":
      cpu.cr3Id = cpu.gprId(RAX);
      return OK;
    case "mov-rax-cr3":
      writeGprId(cpu, RAX, cpu.cr3Id, env.actor);
      return OK;
    case "mov-dr6-rax":
      cpu.dr6Id = cpu.gprId(RAX);
      return OK;
    case "mov-rax-dr6":
      writeGprId(cpu, RAX, cpu.dr6Id, env.actor);
      return OK;
    case "tileloadd":
      // docs/facts.md#xfd: with IA32_XFD[18]=1 the first use of tile data raises #NM and sets IA32_XFD_ERR[18].
      if ((LOW[cpu.xfdId]! & TILE_DATA_BIT) !== 0) {
        cpu.xfdErrId = vid(val(cpu.xfdErrId) | XFEATURE_MASK.XTILE_DATA);
        return nm("tileloadd with IA32_XFD[18]=1");
      }
      cpu.xinuse = cpu.xinuse | XFEATURE_MASK.XTILE_DATA;
      return OK;
  }
}
const LOW = VALUES.low;
const TILE_DATA_BIT = 1 << XFEATURE.XTILE_DATA;

function pushPop2(cpu: PhysicalCpu, i: Extract<Instruction, { op: "push2" | "pop2" }>, env: ExecEnv): ExecOutcome {
  const rsp = cpu.gpr(RSP);
  // PUSH2/POP2 need a 16-byte aligned stack (docs/facts.md#push2-pop2, ASSUMPTIONS.push2pop2Rules).
  if ((valLow(cpu.gprId(RSP)) & 15) !== 0) return gp(`${i.op} with RSP 0x${rsp.toString(16)} not 16-byte aligned`);
  const rspTag = cpu.gprTag(RSP);
  if (i.op === "push2") {
    const top = BigInt.asUintN(64, rsp - 16n);
    if (!isCanonical(top) || !isCanonical(rsp - 1n)) return ss(`push2 to non-canonical stack 0x${top.toString(16)}`);
    // first is pushed first, so it lands at the higher address.
    const topId = vid(top);
    env.store(topId, 8, cpu.gprId(i.first), cpu.gprTag(i.first));
    env.store(topId, 0, cpu.gprId(i.second), cpu.gprTag(i.second));
    cpu.setGpr(RSP, top, rspTag);
    return OK;
  }
  if (!isCanonical(rsp) || !isCanonical(BigInt.asUintN(64, rsp + 15n))) return ss(`pop2 from non-canonical stack 0x${rsp.toString(16)}`);
  const a = env.load(cpu.gprId(RSP), 0);
  const b = env.load(cpu.gprId(RSP), 8);
  writeGprId(cpu, i.first, wordId(a), wordTag(a));
  writeGprId(cpu, i.second, wordId(b), wordTag(b));
  cpu.setGpr(RSP, BigInt.asUintN(64, rsp + 16n), rspTag);
  return OK;
}

/** The XSAVE area of a memory operand as (base register value, displacement), checked for alignment and canonicality. */
function xsaveArea(cpu: PhysicalCpu, m: MemOperand, op: string): { base: number; disp: number } | ExecOutcome {
  if (((valLow(cpu.gprId(m.base)) + m.disp) & 63) !== 0) return gp(`${op} area 0x${effectiveAddress(cpu, m).toString(16)} not 64-byte aligned`);
  if (!canonicalRange(cpu.gprId(m.base), m.disp, 4096)) return nonCanonical(m, effectiveAddress(cpu, m));
  return { base: cpu.gprId(m.base), disp: m.disp };
}

/**
 * XSAVE (standard format). RFBM = EDX:EAX & XCR0; XSTATE_BV[i] ← XINUSE[i] for i in RFBM, other
 * XSTATE_BV bits unchanged (SDM 13.7). Of the components only 19 (R16–R31, with their tags) is modelled;
 * it is written when RFBM[19]=1, i.e. only while XCR0.APX=1 (docs/facts.md#apx-xsave).
 */
function xsave(cpu: PhysicalCpu, m: MemOperand, env: ExecEnv): ExecOutcome {
  const area = xsaveArea(cpu, m, "xsave");
  if (!("base" in area)) return area;
  const rfbm = edxEax(cpu) & cpu.xcr0;
  const oldId = wordId(env.load(area.base, area.disp + XSAVE_HEADER));
  const old = val(oldId);
  const bv = (old & ~rfbm) | (inUse(cpu, rfbm) & rfbm);
  env.store(area.base, area.disp + XSAVE_HEADER, bv === old ? oldId : vid(bv), env.actor);
  if ((rfbm & XFEATURE_MASK.APX) !== 0n) {
    const off = area.disp + apxXsaveOffset(env);
    for (let k = 0; k < 16; k++) {
      const r = EGPR_FIRST + k;
      env.store(area.base, off + 8 * k, cpu.gprId(r), cpu.gprTag(r));
    }
  }
  if ((rfbm & XFEATURE_MASK.PKRU) !== 0n) env.store(area.base, area.disp + pkruXsaveOffset(env), vid(BigInt(cpu.pkru)), env.actor);
  return OK;
}

/**
 * XINUSE as XSAVE sees it for the components `rfbm` requests: PKRU counts as in use exactly when it is
 * non-zero (its init value is 0), and a component disarmed in IA32_XFD is saved as if in its init state
 * (XSTATE_BV[i]=0, no #NM — docs/facts.md#xfd). The bigint work happens only when PKRU or XFD is involved.
 */
function inUse(cpu: PhysicalCpu, rfbm: bigint): bigint {
  let x = cpu.xinuse;
  if ((rfbm & XFEATURE_MASK.PKRU) !== 0n) x = cpu.pkru !== 0 ? x | XFEATURE_MASK.PKRU : x & ~XFEATURE_MASK.PKRU;
  if (cpu.xfdId !== 0) x &= ~val(cpu.xfdId);
  return x;
}

/** Standard-format offset of PKRU (component 9): CPUID.(0xD,9).EBX. */
const pkruXsaveOffset = (env: Pick<ExecEnv, "cpuid">): number => env.cpuid(0xd, XFEATURE.PKRU).ebx;

/**
 * Compacted-format offset of component `index` for XCOMP_BV, from this CPU's leaf 0xD (sizes and the
 * ECX[1] 64-byte alignment), as the SDM 13.4.3 algorithm places it.
 */
function compactedOffset(env: ExecEnv, xcompBv: bigint, index: number): number {
  let off = 576;
  for (let i = 2; i < index; i++) {
    if (((xcompBv >> BigInt(i)) & 1n) === 0n) continue;
    const sub = env.cpuid(0xd, i);
    if ((sub.ecx & 2) !== 0) off = (off + 63) & ~63;
    off += sub.eax;
  }
  if ((env.cpuid(0xd, index).ecx & 2) !== 0) off = (off + 63) & ~63;
  return off;
}

/**
 * XRSTOR, standard or compacted form (XCOMP_BV[63]). #GP when XSTATE_BV has bits outside XCR0 (standard)
 * or outside XCOMP_BV (compacted), when XCOMP_BV names bits outside XCR0, when the reserved header
 * bytes are non-zero (8..23 standard, 16..63 compacted), or the compacted form without XSAVEC. For
 * component 19 in RFBM: XSTATE_BV[19]=1 loads R16–R31 with their stored tags, XSTATE_BV[19]=0 loads
 * the init state (zeros, Tag.init) — docs/facts.md#apx-xsave.
 */
function xrstor(cpu: PhysicalCpu, m: MemOperand, env: ExecEnv): ExecOutcome {
  const area = xsaveArea(cpu, m, "xrstor");
  if (!("base" in area)) return area;
  const rfbm = edxEax(cpu) & cpu.xcr0;
  const hdr = area.disp + XSAVE_HEADER;
  const xstateBv = val(wordId(env.load(area.base, hdr)));
  const xcompBv = val(wordId(env.load(area.base, hdr + 8)));
  const compacted = (xcompBv >> 63n) !== 0n;
  let apxOffset: number;
  if (compacted) {
    if (!envHas(env, "XSAVEC")) return gp("xrstor: compacted form on a CPU without XSAVEC");
    const comp = xcompBv & ~(1n << 63n);
    if ((comp & ~cpu.xcr0) !== 0n) return gp(`xrstor: XCOMP_BV 0x${xcompBv.toString(16)} has bits outside XCR0`);
    if ((xstateBv & ~comp) !== 0n) return gp(`xrstor: XSTATE_BV 0x${xstateBv.toString(16)} has bits outside XCOMP_BV`);
    for (let k = 2; k < 8; k++) if (wordId(env.load(area.base, hdr + 8 * k)) !== 0) return gp("xrstor: header bytes 16..63 are not zero");
    apxOffset = compactedOffset(env, comp, XFEATURE.APX);
  } else {
    if (xcompBv !== 0n || wordId(env.load(area.base, hdr + 16)) !== 0) return gp("xrstor: header bytes 8..23 are not zero");
    if ((xstateBv & ~cpu.xcr0) !== 0n) return gp(`xrstor: XSTATE_BV 0x${xstateBv.toString(16)} has bits outside XCR0`);
    apxOffset = apxXsaveOffset(env);
  }
  // docs/facts.md#xfd: restoring a component disarmed in IA32_XFD from a non-init XSTATE_BV is #NM.
  if (cpu.xfdId !== 0 && (rfbm & xstateBv & val(cpu.xfdId)) !== 0n) {
    return nm(`xrstor: XSTATE_BV 0x${xstateBv.toString(16)} has components disarmed in IA32_XFD 0x${val(cpu.xfdId).toString(16)}`);
  }
  if ((rfbm & XFEATURE_MASK.PKRU) !== 0n) {
    cpu.pkru = (xstateBv & XFEATURE_MASK.PKRU) !== 0n ? valLow(wordId(env.load(area.base, area.disp + pkruXsaveOffset(env)))) : 0;
  }
  if ((rfbm & XFEATURE_MASK.APX) !== 0n) {
    if ((xstateBv & XFEATURE_MASK.APX) !== 0n) {
      for (let k = 0; k < 16; k++) {
        const w = env.load(area.base, area.disp + apxOffset + 8 * k);
        cpu.setGprId(EGPR_FIRST + k, wordId(w), wordTag(w));
      }
    } else {
      for (let r = EGPR_FIRST; r < NR_GPRS; r++) cpu.setGprId(r, 0, Tag.init);
    }
  }
  cpu.xinuse = (cpu.xinuse & ~rfbm) | (xstateBv & rfbm);
  return OK;
}
