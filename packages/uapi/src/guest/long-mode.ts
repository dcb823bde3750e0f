import { insn } from "@kvmx/core";
import type { KvmSegment, KvmSregs } from "../api.js";
import { Assembler } from "./assembler.js";

/**
 * A 64-bit guest machine image: identity-mapped page tables, a GDT with kernel and user segments and
 * a TSS, an IDT whose 32 exception handlers report their vector with OUT, and the kvm_sregs values
 * (CR0/CR4/EFER, segments) that put a vCPU straight into long mode at CPL0 — no boot code needed.
 * Layout (guest-physical = virtual):
 *
 *   0x1000 PML4   0x2000 PDPT   0x3000 PD (512 × 2 MiB pages = first 1 GiB)
 *   0x4000 GDT    0x5000 IDT    0x6000 exception stubs    0x7000 TSS
 *   0x8000..0xF000 stack (grows down from STACK_TOP)      0x10000 program entry
 */
export const LONG_MODE_LAYOUT = {
  pml4: 0x1000n,
  pdpt: 0x2000n,
  pd: 0x3000n,
  gdt: 0x4000n,
  idt: 0x5000n,
  stubs: 0x6000n,
  tss: 0x7000n,
  stackTop: 0xf000n,
  entry: 0x10000n,
} as const;

/** Port an exception handler writes its vector to (AL) before halting. */
export const GUEST_VECTOR_PORT = 0x11;
/** Port guest programs write their results to. */
export const GUEST_REPORT_PORT = 0x10;

export const SELECTOR = { kernelCode: 0x08, kernelData: 0x10, userData: 0x1b, userCode: 0x23, tss: 0x28 } as const;

/** Page-table entry bits */
export const PTE = { P: 1n << 0n, RW: 1n << 1n, US: 1n << 2n, PS: 1n << 7n } as const;

export const CR0 = { PE: 1n << 0n, MP: 1n << 1n, ET: 1n << 4n, NE: 1n << 5n, WP: 1n << 16n, PG: 1n << 31n } as const;
export const CR4 = { PAE: 1n << 5n, OSFXSR: 1n << 9n, OSXMMEXCPT: 1n << 10n, OSXSAVE: 1n << 18n } as const;
export const EFER = { SCE: 1n << 0n, LME: 1n << 8n, LMA: 1n << 10n } as const;

/** Raw 8-byte GDT descriptors (SDM Vol. 3 §3.4.5): base 0, limit 0xFFFFF pages. */
export const GDT_DESCRIPTORS = {
  null: 0n,
  /** type 0xA (execute/read), S, DPL0, P, L=1, G */
  kernelCode: 0x00af9a000000ffffn,
  /** type 0x2 (read/write), S, DPL0, P, D/B, G */
  kernelData: 0x00cf92000000ffffn,
  /** as kernelData with DPL3 */
  userData: 0x00cff2000000ffffn,
  /** as kernelCode with DPL3 */
  userCode: 0x00affa000000ffffn,
} as const;

const TSS_LIMIT = 0x67;
const IDT_VECTORS = 32;
/** bytes per exception stub: mov al, v (2); out port, al (2); hlt (1); jmp back to hlt (2); nop (1) */
export const STUB_SIZE = 8;

export interface MemoryChunk {
  readonly gpa: bigint;
  readonly bytes: Uint8Array;
}

export interface LongModeOptions {
  /** Set CR4.OSXSAVE (needed for XSETBV/XGETBV and any APX encoding). Default true. */
  osxsave?: boolean;
  /** Mark pages user-accessible so CPL3 code can run. Default true. */
  userPages?: boolean;
}

function u64le(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

/** PML4[0] → PDPT, PDPT[0] → PD, PD[i] = i × 2 MiB: identity map of the first GiB. */
export function identityPageTables(userPages = true): MemoryChunk[] {
  const flags = PTE.P | PTE.RW | (userPages ? PTE.US : 0n);
  const pml4 = new Uint8Array(4096);
  pml4.set(u64le(LONG_MODE_LAYOUT.pdpt | flags), 0);
  const pdpt = new Uint8Array(4096);
  pdpt.set(u64le(LONG_MODE_LAYOUT.pd | flags), 0);
  const pd = new Uint8Array(4096);
  for (let i = 0; i < 512; i++) pd.set(u64le((BigInt(i) << 21n) | flags | PTE.PS), i * 8);
  return [
    { gpa: LONG_MODE_LAYOUT.pml4, bytes: pml4 },
    { gpa: LONG_MODE_LAYOUT.pdpt, bytes: pdpt },
    { gpa: LONG_MODE_LAYOUT.pd, bytes: pd },
  ];
}

/** The 64-bit TSS descriptor (16 bytes, type 0x9 available; KVM_SET_SREGS marks it busy via tr.type). */
function tssDescriptor(base: bigint): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, TSS_LIMIT, true);
  dv.setUint16(2, Number(base & 0xffffn), true);
  b[4] = Number((base >> 16n) & 0xffn);
  b[5] = 0x89; // P, DPL0, type 9
  b[6] = 0;
  b[7] = Number((base >> 24n) & 0xffn);
  dv.setUint32(8, Number((base >> 32n) & 0xffffffffn), true);
  return b;
}

export function gdt(): Uint8Array {
  const d = GDT_DESCRIPTORS;
  const out = new Uint8Array(5 * 8 + 16);
  [d.null, d.kernelCode, d.kernelData, d.userData, d.userCode].forEach((v, i) => out.set(u64le(v), i * 8));
  out.set(tssDescriptor(LONG_MODE_LAYOUT.tss), SELECTOR.tss);
  return out;
}

/** A 64-bit TSS whose RSP0 is the stack top, so faults taken at CPL3 land on a kernel stack. */
export function tss(): Uint8Array {
  const b = new Uint8Array(TSS_LIMIT + 1);
  new DataView(b.buffer).setBigUint64(4, LONG_MODE_LAYOUT.stackTop, true);
  return b;
}

/** Exception stub i: report vector i on GUEST_VECTOR_PORT, then halt forever. */
export function exceptionStubs(): Assembler {
  const a = new Assembler(LONG_MODE_LAYOUT.stubs);
  for (let v = 0; v < IDT_VECTORS; v++) {
    a.label(`stub${v}`)
      .movAl(v)
      .insn(insn.outImm8(GUEST_VECTOR_PORT))
      .label(`halt${v}`)
      .insn(insn.hlt())
      .raw([0xeb, 0xfd], `jmp halt${v}`)
      .raw([0x90], "nop"); // pad to STUB_SIZE so the IDT can use a fixed stride
  }
  return a;
}

/** 64-bit interrupt gates (type 0xE, DPL0, P) for vectors 0..31, pointing at the stubs. */
export function idt(): Uint8Array {
  const out = new Uint8Array(IDT_VECTORS * 16);
  const dv = new DataView(out.buffer);
  for (let v = 0; v < IDT_VECTORS; v++) {
    const target = LONG_MODE_LAYOUT.stubs + BigInt(v * STUB_SIZE);
    const at = v * 16;
    dv.setUint16(at, Number(target & 0xffffn), true);
    dv.setUint16(at + 2, SELECTOR.kernelCode, true);
    out[at + 4] = 0; // IST
    out[at + 5] = 0x8e; // P, DPL0, 64-bit interrupt gate
    dv.setUint16(at + 6, Number((target >> 16n) & 0xffffn), true);
    dv.setUint32(at + 8, Number((target >> 32n) & 0xffffffffn), true);
  }
  return out;
}

/** Everything but the program: page tables, GDT, IDT, stubs, TSS. */
export function longModeSystemImage(options: LongModeOptions = {}): MemoryChunk[] {
  return [
    ...identityPageTables(options.userPages ?? true),
    { gpa: LONG_MODE_LAYOUT.gdt, bytes: gdt() },
    { gpa: LONG_MODE_LAYOUT.idt, bytes: idt() },
    { gpa: LONG_MODE_LAYOUT.stubs, bytes: exceptionStubs().assemble() },
    { gpa: LONG_MODE_LAYOUT.tss, bytes: tss() },
  ];
}

const flat = (selector: number, type: number, code: boolean, dpl: number): KvmSegment => ({
  base: 0n,
  limit: 0xffffffff,
  selector,
  type,
  present: 1,
  dpl,
  db: code ? 0 : 1,
  s: 1,
  l: code ? 1 : 0,
  g: 1,
  avl: 0,
  unusable: 0,
  padding: 0,
});

/**
 * kvm_sregs for 64-bit mode on this image, keeping what KVM owns from `current` (apic_base,
 * interrupt_bitmap, cr8). `cpl` 3 loads the user selectors into CS/SS and the data segments.
 */
export function longModeSregs(current: KvmSregs, options: LongModeOptions & { cpl?: 0 | 3 } = {}): KvmSregs {
  const user = options.cpl === 3;
  const code = user ? flat(SELECTOR.userCode, 0xb, true, 3) : flat(SELECTOR.kernelCode, 0xb, true, 0);
  const data = user ? flat(SELECTOR.userData, 0x3, false, 3) : flat(SELECTOR.kernelData, 0x3, false, 0);
  return {
    ...current,
    cs: code,
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    // busy 64-bit TSS (type 0xB): VMX requires TR to be a usable busy TSS
    tr: { base: LONG_MODE_LAYOUT.tss, limit: TSS_LIMIT, selector: SELECTOR.tss, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0, padding: 0 },
    ldt: { base: 0n, limit: 0, selector: 0, type: 0x2, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1, padding: 0 },
    gdt: { base: LONG_MODE_LAYOUT.gdt, limit: gdt().byteLength - 1, padding: [0, 0, 0] },
    idt: { base: LONG_MODE_LAYOUT.idt, limit: IDT_VECTORS * 16 - 1, padding: [0, 0, 0] },
    cr0: CR0.PE | CR0.MP | CR0.ET | CR0.NE | CR0.WP | CR0.PG,
    cr2: 0n,
    cr3: LONG_MODE_LAYOUT.pml4,
    cr4: CR4.PAE | CR4.OSFXSR | CR4.OSXMMEXCPT | ((options.osxsave ?? true) ? CR4.OSXSAVE : 0n),
    efer: EFER.LME | EFER.LMA,
  };
}
