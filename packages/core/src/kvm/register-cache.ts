/**
 * KVM's register cache accessors (regs.h / kvm_cache_regs.h, docs/facts.md#register-accessors), one contract each.
 *
 *   avail dirty  meaning
 *     0     0    the value lives in the VMCS/VMCB/hardware; regs[] is stale
 *     0     1    invalid — must never occur (cache-coherence monitor)
 *     1     0    regs[] valid
 *     1     1    regs[] valid and must be written back before VM-entry
 *
 * mark_available sets avail; mark_dirty sets avail AND dirty; mark_for_reload clears both.
 * Only register_write[_raw], rsp_write and rip_write set dirty bits; the per-GPR accessors never
 * call cache_reg (every GPR but RSP is always available) and never dirty. cache_reg is reached only
 * from read_raw, rip_read, pdptr_read, read_cr0/cr4_bits (guest-owned bits only) and read_cr3, and
 * only when the avail bit is clear. A kernel WARN is recorded through `ctx.warn`, never thrown.
 */
import type { ProvenanceTag } from "../cpu/provenance.js";
import { MASK_WORDS, maskWords } from "./regs.js";
import type { VcpuState } from "./vcpu.js";

/** What the accessors need besides the vCPU: the vendor's cache_reg, WARN, and the design's EGPR door. */
export interface RegCacheCtx {
  readonly vcpu: VcpuState;
  /** kvm_x86_ops.cache_reg. */
  cacheReg(reg: number): void;
  warn(message: string): void;
  /**
   * Where R16..R31 are when they do not live in regs[] (fpstate design: REX2 MOVs on hardware or the
   * fpstate buffer). Absent: indices ≥ the GPR count are out of range (WARN, read 0, drop writes).
   */
  readonly egpr?: {
    read(index: number): { value: bigint; tag: ProvenanceTag };
    write(index: number, value: bigint, tag: ProvenanceTag): void;
  };
  /** Tag for values KVM writes on the guest's behalf (emulation results): the guest's. */
  readonly guestTag: ProvenanceTag;
}

const MASK32 = 0xffff_ffffn;

/** The bitmaps live in 16-bit words; register `reg` is bit reg & 15 of word reg >> 4. */
const W = (reg: number): number => reg >>> 4;
const B = (reg: number): number => 1 << (reg & 15);

export const isAvailable = (v: VcpuState, reg: number): boolean => (v.availWord(W(reg)) & B(reg)) !== 0;
export const isDirty = (v: VcpuState, reg: number): boolean => (v.dirtyWord(W(reg)) & B(reg)) !== 0;

/** PRE masks are u32: bits above 31 do not exist. */
const exists = (v: VcpuState, reg: number): boolean => v.layout.maskBits === 64 || reg < 32;

/** kvm_register_mark_available. */
export function markAvailable(v: VcpuState, reg: number): void {
  if (exists(v, reg)) v.setAvailWord(W(reg), v.availWord(W(reg)) | B(reg));
}
/** kvm_register_mark_dirty: available AND dirty. */
export function markDirty(v: VcpuState, reg: number): void {
  if (!exists(v, reg)) return;
  v.setAvailWord(W(reg), v.availWord(W(reg)) | B(reg));
  v.setDirtyWord(W(reg), v.dirtyWord(W(reg)) | B(reg));
}
/** kvm_register_mark_for_reload: neither available nor dirty (next read goes to cache_reg). */
export function markForReload(v: VcpuState, reg: number): void {
  v.setAvailWord(W(reg), v.availWord(W(reg)) & ~B(reg));
  v.setDirtyWord(W(reg), v.dirtyWord(W(reg)) & ~B(reg));
}
/** kvm_clear_available_registers(mask): avail &= ~mask (after every VM-exit for the lazy set). */
export function clearAvailableRegisters(v: VcpuState, mask: bigint | readonly number[]): void {
  const w = typeof mask === "bigint" ? maskWords(mask) : mask;
  for (let i = 0; i < MASK_WORDS; i++) v.setAvailWord(i, v.availWord(i) & ~(w[i] ?? 0));
}
/** kvm_reset_dirty_registers: dirty = 0 (before VM-entry, after the write-back). */
export function resetDirtyRegisters(v: VcpuState): void {
  for (let i = 0; i < MASK_WORDS; i++) v.setDirtyWord(i, 0);
}
/** The avail=0/dirty=1 registers (which must never exist): 0n when the cache is coherent. */
export function dirtyNotAvailable(v: VcpuState): bigint {
  let any = 0;
  for (let i = 0; i < MASK_WORDS; i++) any |= v.dirtyWord(i) & ~v.availWord(i);
  return any === 0 ? 0n : v.regsDirty & ~v.regsAvail;
}

function inRange(ctx: RegCacheCtx, reg: number, what: string): boolean {
  if (reg >= 0 && reg < ctx.vcpu.layout.rawLimit) return true;
  ctx.warn(`${what}: register ${reg} is out of range (limit ${ctx.vcpu.layout.rawLimit})`);
  return false;
}

const isFpEgpr = (ctx: RegCacheCtx, reg: number): boolean =>
  ctx.egpr !== undefined && !ctx.vcpu.layout.egprsInRegs && reg >= 16 && reg < 32;

/** kvm_register_read_raw: bound check (WARN, 0), cache_reg when unavailable, regs[reg]; never masks. */
export function registerReadRaw(ctx: RegCacheCtx, reg: number): bigint {
  return registerReadRawTagged(ctx, reg).value;
}

/** register_read_raw that also says whose value it returned (for the leak/coherence monitors). */
export function registerReadRawTagged(ctx: RegCacheCtx, reg: number): { value: bigint; tag: ProvenanceTag } {
  if (isFpEgpr(ctx, reg)) return ctx.egpr!.read(reg);
  if (!inRange(ctx, reg, "kvm_register_read_raw")) return { value: 0n, tag: 0 };
  const v = ctx.vcpu;
  if (!isAvailable(v, reg)) ctx.cacheReg(reg);
  return { value: v.regs.get(reg), tag: v.regs.tag(reg) };
}

/** kvm_register_write_raw: bound check (WARN, drop), store, mark dirty; never masks. */
export function registerWriteRaw(ctx: RegCacheCtx, reg: number, value: bigint, tag: ProvenanceTag = ctx.guestTag): void {
  if (isFpEgpr(ctx, reg)) {
    ctx.egpr!.write(reg, BigInt.asUintN(64, value), tag);
    return;
  }
  if (!inRange(ctx, reg, "kvm_register_write_raw")) return;
  const v = ctx.vcpu;
  v.regs.set(reg, value, tag);
  markDirty(v, reg);
}

/** is_64_bit_mode: EFER.LMA && CS.L. */
const is64 = (v: VcpuState): boolean => v.longMode;

/** kvm_register_read: read_raw, masked to 32 bits outside 64-bit mode. */
export function registerRead(ctx: RegCacheCtx, reg: number): bigint {
  const val = registerReadRaw(ctx, reg);
  return is64(ctx.vcpu) ? val : val & MASK32;
}

/** kvm_register_write: masked to 32 bits outside 64-bit mode, then write_raw. */
export function registerWrite(ctx: RegCacheCtx, reg: number, value: bigint, tag?: ProvenanceTag): void {
  registerWriteRaw(ctx, reg, is64(ctx.vcpu) ? value : value & MASK32, tag);
}

/** kvm_rip_read: cache_reg(RIP) when unavailable. POST keeps `rip`, PRE keeps regs[16]. */
export function ripRead(ctx: RegCacheCtx): bigint {
  const v = ctx.vcpu;
  const RIP = v.layout.RIP;
  if (!isAvailable(v, RIP)) ctx.cacheReg(RIP);
  return v.layout.pre ? v.regs.get(RIP) : v.rip;
}
/** kvm_rip_write: store, mark dirty. */
export function ripWrite(ctx: RegCacheCtx, value: bigint): void {
  const v = ctx.vcpu;
  const RIP = v.layout.RIP;
  if (v.layout.pre) v.regs.set(RIP, value);
  else v.rip = value;
  markDirty(v, RIP);
}

const RSP = 4;
/** kvm_rsp_read: register_read_raw(RSP) — RSP is the one lazily loaded GPR. */
export const rspRead = (ctx: RegCacheCtx): bigint => registerReadRaw(ctx, RSP);
/** kvm_rsp_write: register_write_raw(RSP) — dirty, so it is written back before entry. */
export const rspWrite = (ctx: RegCacheCtx, value: bigint): void => registerWriteRaw(ctx, RSP, value);

/**
 * Per-GPR accessors (kvm_rax_read, kvm_rbx_write, ...): never cache_reg, never dirty — every GPR but
 * RSP is always available, and the asm loads all of them from regs[] on every entry.
 */
export function gprRead(v: VcpuState, reg: number): bigint {
  return v.regs.get(reg);
}
export function gprWrite(v: VcpuState, reg: number, value: bigint, tag: ProvenanceTag): void {
  v.regs.set(reg, value, tag);
}
/** kvm_e<x>_write: zero-extends a 32-bit value into the 64-bit slot. */
export function e32Write(v: VcpuState, reg: number, value: bigint, tag: ProvenanceTag): void {
  gprWrite(v, reg, value & MASK32, tag);
}
/** kvm_read_edx_eax. */
export const readEdxEax = (v: VcpuState): bigint => ((gprRead(v, 2) & MASK32) << 32n) | (gprRead(v, 0) & MASK32);

/** kvm_pdptr_read: cache_reg(PDPTR) when unavailable. */
export function pdptrRead(ctx: RegCacheCtx, index: number): bigint {
  const v = ctx.vcpu;
  if (!isAvailable(v, v.layout.PDPTR)) ctx.cacheReg(v.layout.PDPTR);
  return v.pdptr(index);
}

/**
 * Guest-owned CR0/CR4 bits (cr0_guest_owned_bits). The model gives the guest no CR bits of its own
 * (every CR0/CR4 write exits), so a read never needs cache_reg for them.
 */
export const guestOwnedBits = (_v: VcpuState, _which: "cr0" | "cr4"): bigint => 0n;
const guestOwned = guestOwnedBits;

/** kvm_read_cr0_bits: cache_reg(CR0) only when a requested bit is guest-owned and CR0 is unavailable. */
export function readCr0Bits(ctx: RegCacheCtx, mask: bigint): bigint {
  const v = ctx.vcpu;
  if ((mask & guestOwned(v, "cr0")) !== 0n && !isAvailable(v, v.layout.CR0)) ctx.cacheReg(v.layout.CR0);
  return v.cr0 & mask;
}
/** kvm_read_cr4_bits: as for CR0. */
export function readCr4Bits(ctx: RegCacheCtx, mask: bigint): bigint {
  const v = ctx.vcpu;
  if ((mask & guestOwned(v, "cr4")) !== 0n && !isAvailable(v, v.layout.CR4)) ctx.cacheReg(v.layout.CR4);
  return v.cr4 & mask;
}
/** kvm_read_cr3: cache_reg(CR3) when unavailable. */
export function readCr3(ctx: RegCacheCtx): bigint {
  const v = ctx.vcpu;
  if (!isAvailable(v, v.layout.CR3)) ctx.cacheReg(v.layout.CR3);
  return v.cr3;
}
