import {
  cpuidLookup,
  decode,
  DecodeError,
  egprsOf,
  execute,
  kvmEmulateXsetbv,
  KvmxError,
  PhysicalCpu,
  Tag,
  val,
  vid,
  word,
  XFEATURE_MASK,
  type CpuMode,
  type CpuidEntry,
  type ExecEnv,
  type Instruction,
  type TaggedWord,
  type VcpuIoctlCtx,
  type VcpuState,
} from "@kvmx/core";
import type { KvmSregs } from "../api.js";
import { KVM_INTERNAL_ERROR } from "../exit-reasons.js";
import { deliverException, VECTOR, type Vector } from "./fault-delivery.js";
import { decodeExtra, executeExtra } from "./guest-extras.js";
import type { GuestPhysSpace } from "./guest-memory.js";
import { translate, type AccessKind, type PagingState, type Translation } from "./guest-paging.js";
import type { ResolvedModelConfig } from "./model-config.js";

/**
 * KVM_RUN of the simulated vCPU: guest code is fetched from guest memory (through the guest's page
 * tables), decoded by core's decoder and executed by core's executor — the same #UD/#GP rules and
 * intercept order as the checker. Exits KVM handles in the kernel (XSETBV through __kvm_set_xcr,
 * CPUID from the vCPU's CPUID table) resume the guest; OUT and HLT return to userspace; faults are
 * delivered through the guest's IDT. The vendor world switch (sites, designs) is the Machine's job,
 * not this loop's: here registers move directly between the vCPU and the CPU.
 */
export interface GuestRunTarget {
  readonly cfg: ResolvedModelConfig;
  readonly mem: GuestPhysSpace;
  readonly vcpu: VcpuState;
  sregs: KvmSregs;
  /** What KVM_SET_CPUID2 installed (empty before it). */
  readonly guestCpuid: readonly CpuidEntry[];
  /** The CPUID table as KVM holds it now (kvm_update_cpuid_runtime applied). */
  runtimeCpuid(): readonly CpuidEntry[];
  /** The exception, NMI or interrupt KVM injects at this entry, if any (taken: it is consumed). */
  entryEvent(): { vector: number; errorCode?: number } | undefined;
  ioctlCtx(): VcpuIoctlCtx;
}

export type GuestStop =
  | { kind: "io"; port: number; size: 1 | 2 | 4; data: Uint8Array; length: number }
  | { kind: "hlt" }
  | { kind: "shutdown"; reason: string }
  | { kind: "internal-error"; suberror: number; reason: string };

/** Instructions one KVM_RUN may execute before the model gives up (a real guest would just keep running). */
export const MODEL_RUN_BUDGET = 1_000_000;

const CR4_OSXSAVE = 1n << 18n;
const CR0_PE = 1n;
const EFER_LMA = 1n << 10n;
const MAX_INSN = 15;

/** A guest page fault raised inside an executor memory access; caught by the run loop and delivered as #PF. */
class GuestPageFault extends KvmxError {
  constructor(
    readonly linear: bigint,
    readonly errorCode: number,
  ) {
    super(`guest #PF at 0x${linear.toString(16)}`, "internal");
  }
}

export function guestMode(s: KvmSregs): CpuMode {
  if ((s.cr0 & CR0_PE) === 0n) return "real";
  if ((s.efer & EFER_LMA) !== 0n) return s.cs.l ? "long64" : "compat";
  return "protected";
}

const pagingOf = (s: KvmSregs, cpl: number): PagingState => ({ cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer, cpl });

/** The physical CPU as the guest finds it at VM-entry: regs[], R16–R31 from the design's home, XCR0. */
function loadCpu(t: GuestRunTarget): PhysicalCpu {
  const v = t.vcpu;
  const cpu = new PhysicalCpu({ xcr0: v.xcr0 });
  for (let r = 0; r < 16; r++) cpu.setGprId(r, v.regs.id(r), v.regs.tag(r));
  const e = egprsOf(v, t.cfg.design.egprHome);
  e.values.forEach((x, k) => cpu.setGpr(16 + k, x, e.tags[k] ?? Tag.init));
  cpu.xinuse = XFEATURE_MASK.FP | (e.present && e.values.some((x) => x !== 0n) ? XFEATURE_MASK.APX : 0n);
  cpu.rip = v.rip;
  cpu.rflags = v.rflags;
  cpu.cr4Osxsave = (t.sregs.cr4 & CR4_OSXSAVE) !== 0n;
  cpu.mode = guestMode(t.sregs);
  cpu.cpl = cpu.mode === "real" ? 0 : t.sregs.cs.dpl;
  return cpu;
}

/** VM-exit: the CPU's registers go back to regs[] / the EGPR home, RIP and RFLAGS to the vCPU. */
function storeCpu(t: GuestRunTarget, cpu: PhysicalCpu): void {
  const v = t.vcpu;
  for (let r = 0; r < 16; r++) v.regs.setId(r, cpu.gprId(r), cpu.gprTag(r));
  const apxInUse = (cpu.xinuse & XFEATURE_MASK.APX) !== 0n;
  if (t.cfg.design.egprHome === "regs" && v.layout.egprsInRegs) {
    for (let r = 16; r < 32; r++) v.regs.setId(r, cpu.gprId(r), cpu.gprTag(r));
  } else if (t.cfg.design.egprHome === "fpstate" && (apxInUse || (v.fpstate.xstateBv & XFEATURE_MASK.APX) !== 0n)) {
    // also when the fpstate holds component 19 but the CPU no longer has it in use (zeroed by XSETBV)
    for (let k = 0; k < 16; k++) v.fpstate.egpr.setId(k, cpu.gprId(16 + k), cpu.gprTag(16 + k));
    v.fpstate.xstateBv |= XFEATURE_MASK.APX;
  }
  v.rip = cpu.rip;
  v.rflags = cpu.rflags;
  // an XSETBV the backend does not intercept changed the CPU's XCR0 directly
  v.xcr0 = cpu.xcr0;
}

/**
 * A TLB for one KVM_RUN: successful translations of 4 KiB pages by (page, access, CPL). Real TLBs may
 * hold translations across page-table writes until INVLPG/CR3 loads, which the guest subset lacks.
 */
class RunTlb {
  /** One map per (access, CPL): linear page number → guest-physical page base. */
  readonly #maps = new Map<string, Map<bigint, bigint>>();
  constructor(readonly t: GuestRunTarget) {}

  translate(linear: bigint, access: AccessKind, cpl: number): Translation {
    const which = `${access}${cpl}`;
    let map = this.#maps.get(which);
    if (!map) this.#maps.set(which, (map = new Map()));
    const page = linear >> 12n;
    const hit = map.get(page);
    if (hit !== undefined) return { ok: true, gpa: hit | (linear & 0xfffn) };
    const tr = translate(this.t.mem, pagingOf(this.t.sregs, cpl), linear, access);
    if (tr.ok) map.set(page, tr.gpa & ~0xfffn);
    return tr;
  }
}

/** Reads up to 15 guest-linear bytes at RIP, a page at a time; stops at the first untranslatable byte (reported in `fault`). */
function fetch(t: GuestRunTarget, tlb: RunTlb, cpu: PhysicalCpu): { bytes: Uint8Array; fault?: { linear: bigint; errorCode: number } } {
  const out = new Uint8Array(MAX_INSN);
  let k = 0;
  // outside 64-bit mode the fetch address is CS.base + (E)IP, 32 bits wide
  const base = cpu.mode === "long64" ? 0n : t.sregs.cs.base;
  while (k < MAX_INSN) {
    const lin = cpu.mode === "long64" ? BigInt.asUintN(64, cpu.rip + BigInt(k)) : (base + cpu.rip + BigInt(k)) & 0xffff_ffffn;
    const tr = tlb.translate(lin, "fetch", cpu.cpl);
    if (!tr.ok) return { bytes: out.subarray(0, k), fault: { linear: lin, errorCode: tr.errorCode } };
    const slot = t.mem.slotOf(tr.gpa);
    if (!slot) return { bytes: out.subarray(0, k) };
    const at = Number(tr.gpa - slot.guestPhysAddr);
    const inPage = 4096 - Number(lin & 0xfffn);
    const n = Math.min(MAX_INSN - k, inPage, slot.size - at);
    out.set(slot.bytes.subarray(at, at + n), k);
    k += n;
  }
  return { bytes: out };
}

function guestEnv(t: GuestRunTarget, tlb: RunTlb, cpu: PhysicalCpu): ExecEnv {
  const tag = Tag.guest(t.vcpu.id);
  const phys = (addr: bigint, access: AccessKind): bigint[] => {
    const out: bigint[] = [];
    for (let k = 0n; k < 8n; k++) {
      const lin = BigInt.asUintN(64, addr + k);
      const tr = tlb.translate(lin, access, cpu.cpl);
      if (!tr.ok) throw new GuestPageFault(lin, tr.errorCode);
      out.push(tr.gpa);
    }
    return out;
  };
  const at = (base: number, off: number): bigint => BigInt.asUintN(64, val(base) + BigInt(off));
  return {
    actor: tag,
    load(base: number, off: number): number {
      let v = 0n;
      phys(at(base, off), "read").forEach((gpa, k) => (v |= BigInt(t.mem.readByte(gpa) ?? 0xff) << BigInt(8 * k)));
      return word(vid(v), tag);
    },
    store(base: number, off: number, id: number): void {
      const value = val(id);
      phys(at(base, off), "write").forEach((gpa, k) => t.mem.writeByte(gpa, Number((value >> BigInt(8 * k)) & 0xffn)));
    },
    rdmsr: (i) => t.vcpu.msrs.get(i),
    wrmsr: (i, v) => (t.vcpu.msrs.set(i, v), true),
    cpuid: (leaf, sub) => cpuidLookup(t.guestCpuid, leaf, sub),
    intercepts: (i: Instruction) => t.cfg.backend.intercepts(t.vcpu, i),
    options: t.cfg.options,
  };
}

const FAULT_VECTOR: Record<string, Vector> = { UD: VECTOR.UD, GP: VECTOR.GP, SS: VECTOR.SS };

/**
 * Runs the guest until an exit to userspace. Mutates the vCPU (registers, XCR0 through KVM's XSETBV
 * emulation), the stored sregs (fault delivery changes CS/SS, CR2) and guest memory.
 */
export function runGuest(t: GuestRunTarget): GuestStop {
  const cpu = loadCpu(t);
  const tlb = new RunTlb(t);
  const env = guestEnv(t, tlb, cpu);
  const stop = (s: GuestStop): GuestStop => {
    storeCpu(t, cpu);
    return s;
  };
  const raise = (vector: Vector, errorCode?: number, cr2?: bigint): GuestStop | undefined => {
    const r = deliverException(t, cpu, vector, errorCode, cr2);
    return r.ok ? undefined : stop(r.stop);
  };
  // an event KVM injects at VM-entry (from KVM_SET_VCPU_EVENTS or the KVM_SET_SREGS interrupt bitmap)
  const injected = t.entryEvent();
  if (injected) {
    cpu.mode = guestMode(t.sregs);
    cpu.cpl = cpu.mode === "real" ? 0 : t.sregs.cs.dpl;
    const s = raise(injected.vector, injected.errorCode);
    if (s) return s;
  }
  for (let step = 0; step < MODEL_RUN_BUDGET; step++) {
    cpu.mode = guestMode(t.sregs);
    cpu.cpl = cpu.mode === "real" ? 0 : t.sregs.cs.dpl;
    const f = fetch(t, tlb, cpu);
    let insn: Instruction;
    let length: number;
    try {
      const d = decode(f.bytes, 0, cpu.mode);
      insn = d.insn;
      length = d.length;
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      if (err.failure === "truncated" && f.fault) {
        const s = raise(VECTOR.PF, f.fault.errorCode, f.fault.linear);
        if (s) return s;
        continue;
      }
      if (err.failure === "invalid") {
        const s = raise(VECTOR.UD);
        if (s) return s;
        continue;
      }
      // the code segment's D bit picks 16- or 32-bit operands outside real and 64-bit mode
      const extra = decodeExtra(f.bytes, cpu.mode, cpu.mode === "long64" || (cpu.mode !== "real" && t.sregs.cs.db === 1));
      if (!extra) {
        return stop({
          kind: "internal-error",
          suberror: KVM_INTERNAL_ERROR.EMULATION,
          reason: `instruction at RIP 0x${cpu.rip.toString(16)} is outside the model's subset: ${err.message}`,
        });
      }
      const done = executeExtra(cpu, extra);
      if (done === "UD") {
        const s = raise(VECTOR.UD);
        if (s) return s;
      } else if (done !== "ok") {
        // an OUT of 2 or 4 bytes: the same exit as OUT AL (no I/O permission check: CPL 0 code only)
        return stop({ kind: "io", port: done.port, size: done.size, data: done.data, length: extra.length });
      }
      continue;
    }
    let out;
    try {
      out = execute(cpu, insn, env);
    } catch (err) {
      if (!(err instanceof GuestPageFault)) throw err;
      const s = raise(VECTOR.PF, err.errorCode, err.linear);
      if (s) return s;
      continue;
    }
    if (out.kind === "fault") {
      const v = FAULT_VECTOR[out.vector];
      if (v === undefined) return stop({ kind: "internal-error", suberror: KVM_INTERNAL_ERROR.EMULATION, reason: `unmodelled fault ${out.vector}` });
      const s = raise(v, 0);
      if (s) return s;
      continue;
    }
    if (out.kind === "ok") {
      cpu.rip = BigInt.asUintN(64, cpu.rip + BigInt(length));
      // HLT that the backend does not intercept still stops the vCPU: with no interrupt source, KVM's halt exits
      if (out.halted) return stop({ kind: "hlt" });
      continue;
    }
    // A VM exit: KVM's handlers see the registers in regs[] (storeCpu is the exit asm's store)
    storeCpu(t, cpu);
    switch (insn.op) {
      case "xsetbv": {
        // handle_xsetbv → kvm_emulate_xsetbv: __kvm_set_xcr; failure injects #GP(0)
        const r = kvmEmulateXsetbv(t.ioctlCtx(), t.cfg.supportedXcr0, cpu.cpl);
        // KVM's XSETBV of the new guest XCR0 before re-entry: the hardware's 1→0 effect on R16–R31
        // is core's (PhysicalCpu.loadXcr0, ASSUMPTIONS.xcr0ApxDisable); a #GP leaves XCR0 as it was.
        cpu.loadXcr0(t.vcpu.xcr0, t.cfg.options);
        if (r.kind === "gp") {
          const s = raise(VECTOR.GP, 0);
          if (s) return s;
        } else {
          cpu.rip = BigInt.asUintN(64, cpu.rip + BigInt(length));
        }
        continue;
      }
      case "cpuid": {
        // kvm_emulate_cpuid: the table KVM_SET_CPUID2 installed with its runtime fields (OSXSAVE,
        // XSAVE sizes for the current XCR0…), 32-bit results zero-extended
        const leaf = Number(cpu.gpr(0) & 0xffff_ffffn);
        const r = cpuidLookup(t.runtimeCpuid(), leaf, Number(cpu.gpr(1) & 0xffff_ffffn));
        const g = Tag.guest(t.vcpu.id);
        cpu.setGpr(0, BigInt(r.eax >>> 0), g);
        cpu.setGpr(3, BigInt(r.ebx >>> 0), g);
        cpu.setGpr(1, BigInt(r.ecx >>> 0), g);
        cpu.setGpr(2, BigInt(r.edx >>> 0), g);
        cpu.rip = BigInt.asUintN(64, cpu.rip + BigInt(length));
        continue;
      }
      case "hlt":
        cpu.rip = BigInt.asUintN(64, cpu.rip + BigInt(length));
        return stop({ kind: "hlt" });
      case "out-imm8-al":
      case "out-dx-al": {
        // kvm_fast_pio_out: RIP stays on the OUT until the next KVM_RUN completes it (complete_fast_pio_out)
        const port = insn.op === "out-imm8-al" ? insn.port : Number(cpu.gpr(2) & 0xffffn);
        return stop({ kind: "io", port, size: 1, data: Uint8Array.of(Number(cpu.gpr(0) & 0xffn)), length });
      }
      default:
        return stop({
          kind: "internal-error",
          suberror: KVM_INTERNAL_ERROR.UNEXPECTED_EXIT_REASON,
          reason: `the model has no exit handler for intercepted ${insn.op} at RIP 0x${cpu.rip.toString(16)}`,
        });
    }
  }
  return stop({ kind: "internal-error", suberror: KVM_INTERNAL_ERROR.EMULATION, reason: `no exit to userspace within ${MODEL_RUN_BUDGET} instructions` });
}
