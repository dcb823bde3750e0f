import type { PhysicalCpu } from "@kvmx/core";
import type { KvmSegment } from "../api.js";
import type { GuestRunTarget, GuestStop } from "./guest-run.js";
import { translate } from "./guest-paging.js";

/**
 * Exception delivery in 64-bit mode (SDM Vol. 3 §6.14): the IDT gate of the vector, a stack switch
 * to TSS.RSP0 when the privilege level drops to 0, the 16-byte aligned frame SS, RSP, RFLAGS, CS,
 * RIP [, error code], IF cleared for interrupt gates. A fault while delivering escalates to #DF, and
 * one while delivering #DF is a triple fault (KVM_EXIT_SHUTDOWN). Real mode goes through the IVT
 * (deliverReal); 16/32-bit protected mode is not delivered (KVM_EXIT_INTERNAL_ERROR says so).
 */
export const VECTOR = { DE: 0, UD: 6, DF: 8, TS: 10, NP: 11, SS: 12, GP: 13, PF: 14 } as const;
export type Vector = number;

const HAS_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21]);
const RFLAGS = { TF: 1n << 8n, IF: 1n << 9n, NT: 1n << 14n, RF: 1n << 16n, VM: 1n << 17n, AC: 1n << 18n } as const;

type Delivery = { ok: true } | { ok: false; stop: GuestStop };

class DeliveryFault {
  constructor(readonly why: string) {}
}

/** Supervisor-mode linear access during delivery (gate, descriptor, TSS and stack accesses are system accesses). */
function sysRead(t: GuestRunTarget, linear: bigint, n: number): Uint8Array | DeliveryFault {
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const tr = translate(t.mem, { cr0: t.sregs.cr0, cr3: t.sregs.cr3, cr4: t.sregs.cr4, efer: t.sregs.efer, cpl: 0 }, linear + BigInt(k), "read");
    if (!tr.ok) return new DeliveryFault(`page fault reading 0x${(linear + BigInt(k)).toString(16)}`);
    const b = t.mem.readByte(tr.gpa);
    if (b === undefined) return new DeliveryFault(`0x${tr.gpa.toString(16)} is not guest memory`);
    out[k] = b;
  }
  return out;
}

function sysWriteU64(t: GuestRunTarget, linear: bigint, value: bigint): DeliveryFault | undefined {
  for (let k = 0; k < 8; k++) {
    const lin = linear + BigInt(k);
    const tr = translate(t.mem, { cr0: t.sregs.cr0, cr3: t.sregs.cr3, cr4: t.sregs.cr4, efer: t.sregs.efer, cpl: 0 }, lin, "write");
    if (!tr.ok || !t.mem.writeByte(tr.gpa, Number((value >> BigInt(8 * k)) & 0xffn))) return new DeliveryFault(`stack write at 0x${lin.toString(16)} failed`);
  }
  return undefined;
}

const u16 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number): number => (u16(b, at) | (u16(b, at + 2) << 16)) >>> 0;

/** A code-segment descriptor from the GDT as KVM reports it in kvm_segment. */
function codeSegment(t: GuestRunTarget, selector: number): KvmSegment | DeliveryFault {
  const index = selector >> 3;
  if (index === 0 || (selector & 4) !== 0 || index * 8 + 7 > t.sregs.gdt.limit) return new DeliveryFault(`selector 0x${selector.toString(16)} outside the GDT`);
  const d = sysRead(t, t.sregs.gdt.base + BigInt(index * 8), 8);
  if (d instanceof DeliveryFault) return d;
  const access = d[5]!;
  const flags = d[6]! >> 4;
  const rawLimit = u16(d, 0) | ((d[6]! & 0xf) << 16);
  const g = (flags >> 3) & 1;
  if ((access & 0x80) === 0) return new DeliveryFault(`code segment 0x${selector.toString(16)} not present`);
  return {
    base: BigInt(u16(d, 2) | (d[4]! << 16) | (d[7]! << 24)) & 0xffff_ffffn,
    limit: g ? ((rawLimit << 12) | 0xfff) >>> 0 : rawLimit,
    selector: selector & ~3,
    type: access & 0xf,
    present: 1,
    dpl: (access >> 5) & 3,
    db: (flags >> 2) & 1,
    s: (access >> 4) & 1,
    l: (flags >> 1) & 1,
    g,
    avl: flags & 1,
    unusable: 0,
    padding: 0,
  };
}

function deliverOnce(t: GuestRunTarget, cpu: PhysicalCpu, vector: Vector, errorCode: number | undefined): DeliveryFault | undefined {
  const s = t.sregs;
  if (vector * 16 + 15 > s.idt.limit) return new DeliveryFault(`vector ${vector} beyond the IDT limit`);
  const gate = sysRead(t, s.idt.base + BigInt(vector * 16), 16);
  if (gate instanceof DeliveryFault) return gate;
  const type = gate[5]! & 0xf;
  if ((gate[5]! & 0x80) === 0 || (type !== 0xe && type !== 0xf)) return new DeliveryFault(`IDT entry ${vector} is not a present 64-bit gate`);
  const target = BigInt(u16(gate, 0)) | (BigInt(u16(gate, 6)) << 16n) | (BigInt(u32(gate, 8)) << 32n);
  const cs = codeSegment(t, u16(gate, 2));
  if (cs instanceof DeliveryFault) return cs;
  const oldCpl = cpu.cpl;
  let rsp = cpu.gpr(4);
  if (cs.dpl < oldCpl) {
    // privilege change: the new stack comes from TSS.RSP<dpl> (64-bit TSS, RSP0 at +4)
    const rsp0 = sysRead(t, s.tr.base + 4n + BigInt(8 * cs.dpl), 8);
    if (rsp0 instanceof DeliveryFault) return rsp0;
    rsp = new DataView(rsp0.buffer).getBigUint64(0, true);
  }
  rsp &= ~0xfn;
  const frame = [BigInt(s.ss.selector), cpu.gpr(4), cpu.rflags, BigInt(s.cs.selector), cpu.rip];
  if (errorCode !== undefined && HAS_ERROR_CODE.has(vector)) frame.push(BigInt(errorCode >>> 0));
  for (const word of frame) {
    rsp = BigInt.asUintN(64, rsp - 8n);
    const f = sysWriteU64(t, rsp, word);
    if (f) return f;
  }
  cpu.setGpr(4, rsp, cpu.gprTag(4));
  cpu.rflags &= ~(RFLAGS.TF | RFLAGS.NT | RFLAGS.RF | RFLAGS.VM | (type === 0xe ? RFLAGS.IF : 0n));
  cpu.rip = target;
  if (cs.dpl < oldCpl) {
    // 64-bit mode loads SS with a NULL selector whose RPL is the new CPL
    t.sregs = { ...t.sregs, ss: { ...t.sregs.ss, selector: cs.dpl, unusable: 1, dpl: cs.dpl } };
  }
  t.sregs = { ...t.sregs, cs };
  cpu.cpl = cs.dpl;
  return undefined;
}

/**
 * Real mode (SDM Vol. 3 §21.1.4): the IVT entry vector*4 of the IDTR's table holds offset:segment;
 * FLAGS, CS and IP are pushed as words on SS:SP, IF, TF and AC cleared, CS:IP loaded; no error code.
 * An entry beyond the IDTR limit is #GP, then #DF, then a triple fault.
 */
function deliverReal(t: GuestRunTarget, cpu: PhysicalCpu, vector: Vector): DeliveryFault | undefined {
  const s = t.sregs;
  if (vector * 4 + 3 > s.idt.limit) return new DeliveryFault(`vector ${vector} beyond the IVT limit`);
  const entry = sysRead(t, s.idt.base + BigInt(vector * 4), 4);
  if (entry instanceof DeliveryFault) return entry;
  let sp = Number(cpu.gpr(4) & 0xffffn);
  for (const word of [Number(cpu.rflags & 0xffffn), s.cs.selector, Number(cpu.rip & 0xffffn)]) {
    sp = (sp - 2) & 0xffff;
    for (let k = 0; k < 2; k++) {
      const lin = s.ss.base + BigInt((sp + k) & 0xffff);
      if (!t.mem.writeByte(lin & 0xffff_ffffn, (word >> (8 * k)) & 0xff)) return new DeliveryFault(`stack write at 0x${lin.toString(16)} failed`);
    }
  }
  cpu.setGpr(4, (cpu.gpr(4) & ~0xffffn) | BigInt(sp), cpu.gprTag(4));
  cpu.rflags &= ~(RFLAGS.IF | RFLAGS.TF | RFLAGS.AC);
  const selector = u16(entry, 2);
  cpu.rip = BigInt(u16(entry, 0));
  t.sregs = { ...t.sregs, cs: { ...t.sregs.cs, selector, base: BigInt(selector) << 4n } };
  return undefined;
}

/** Delivers `vector` to the guest (with #DF and triple-fault escalation); CR2 is set for #PF. */
export function deliverException(t: GuestRunTarget, cpu: PhysicalCpu, vector: Vector, errorCode?: number, cr2?: bigint): Delivery {
  if (cpu.mode === "real") {
    const first = deliverReal(t, cpu, vector);
    if (!first) return { ok: true };
    const gp = deliverReal(t, cpu, VECTOR.GP);
    if (!gp) return { ok: true };
    const df = deliverReal(t, cpu, VECTOR.DF);
    if (!df) return { ok: true };
    return { ok: false, stop: { kind: "shutdown", reason: `triple fault in real mode: vector ${vector} (${first.why}), #GP (${gp.why}), #DF (${df.why})` } };
  }
  if (cpu.mode !== "long64") {
    return { ok: false, stop: { kind: "internal-error", suberror: 1, reason: `delivering vector ${vector} in ${cpu.mode} mode is not modelled` } };
  }
  if (cr2 !== undefined) t.sregs = { ...t.sregs, cr2 };
  const first = deliverOnce(t, cpu, vector, errorCode);
  if (!first) return { ok: true };
  const df = deliverOnce(t, cpu, VECTOR.DF, 0);
  if (!df) return { ok: true };
  return { ok: false, stop: { kind: "shutdown", reason: `triple fault: vector ${vector} (${first.why}), then #DF (${df.why})` } };
}
