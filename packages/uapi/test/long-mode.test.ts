import { decode, insn } from "@kvmx/core";
import { describe, expect, it } from "vitest";
import { zeroStruct } from "../src/structs/codec.js";
import {
  CR0,
  CR4,
  EFER,
  exceptionStubs,
  gdt,
  GUEST_VECTOR_PORT,
  identityPageTables,
  idt,
  LONG_MODE_LAYOUT,
  longModeSregs,
  SELECTOR,
  STUB_SIZE,
  tss,
} from "../src/guest/long-mode.js";
import type { KvmSegment } from "../src/api.js";

const u64 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getBigUint64(at, true);

/** Decodes an 8-byte code/data descriptor the way the CPU reads it (SDM Vol. 3 §3.4.5). */
function descriptor(d: bigint) {
  const n = (lo: bigint, width: bigint) => Number((d >> lo) & ((1n << width) - 1n));
  return {
    limit: n(0n, 16n) | (n(48n, 4n) << 16),
    base: n(16n, 24n) | (n(56n, 8n) << 24),
    type: n(40n, 4n),
    s: n(44n, 1n),
    dpl: n(45n, 2n),
    present: n(47n, 1n),
    avl: n(52n, 1n),
    l: n(53n, 1n),
    db: n(54n, 1n),
    g: n(55n, 1n),
  };
}

/** The sregs segment KVM will load must agree with the GDT entry its selector names (type bit 0 = accessed). */
function expectSegmentMatchesGdt(seg: KvmSegment, table: Uint8Array) {
  const d = descriptor(u64(table, seg.selector & ~7));
  expect(d.present).toBe(seg.present);
  expect(d.dpl).toBe(seg.dpl);
  expect(d.s).toBe(seg.s);
  expect(d.l).toBe(seg.l);
  expect(d.db).toBe(seg.db);
  expect(d.g).toBe(seg.g);
  expect(d.type | 1).toBe(seg.type | 1);
  expect(BigInt(d.base)).toBe(seg.base);
  expect(d.g ? d.limit * 4096 + 4095 : d.limit).toBe(seg.limit);
  expect(seg.selector & 3).toBe(seg.dpl);
}

describe("identity page tables", () => {
  it("PML4[0] → PDPT, PDPT[0] → PD, PD[i] maps 2 MiB page i; nothing else present", () => {
    const [pml4, pdpt, pd] = identityPageTables(false).map((c) => c.bytes);
    expect(u64(pml4!, 0)).toBe(LONG_MODE_LAYOUT.pdpt | 0x3n);
    expect(u64(pdpt!, 0)).toBe(LONG_MODE_LAYOUT.pd | 0x3n);
    for (let i = 0; i < 512; i++) expect(u64(pd!, i * 8)).toBe((BigInt(i) << 21n) | 0x83n);
    for (let i = 1; i < 512; i++) {
      expect(u64(pml4!, i * 8)).toBe(0n);
      expect(u64(pdpt!, i * 8)).toBe(0n);
    }
  });
  it("user pages set U/S at every level", () => {
    const [pml4, , pd] = identityPageTables(true).map((c) => c.bytes);
    expect(u64(pml4!, 0) & 4n).toBe(4n);
    expect(u64(pd!, 8) & 0x87n).toBe(0x87n);
  });
});

describe("GDT, TSS and sregs agree", () => {
  const table = gdt();
  it.each([0, 3] as const)("CPL%i segments match their GDT descriptors", (cpl) => {
    const s = longModeSregs(zeroStruct("kvm_sregs"), { cpl });
    for (const seg of [s.cs, s.ds, s.es, s.fs, s.gs, s.ss]) expectSegmentMatchesGdt(seg, table);
    expect(s.cs.l).toBe(1);
    expect(s.cs.db).toBe(0); // L=1 requires D=0
  });
  it("the TSS descriptor (16 bytes at the TR selector) points at the TSS, whose RSP0 is the stack top", () => {
    const lo = u64(table, SELECTOR.tss);
    const d = descriptor(lo);
    expect(d.type).toBe(9);
    expect(d.present).toBe(1);
    expect(BigInt(d.base) | (u64(table, SELECTOR.tss + 8) << 32n)).toBe(LONG_MODE_LAYOUT.tss);
    const s = longModeSregs(zeroStruct("kvm_sregs"));
    expect(s.tr.base).toBe(LONG_MODE_LAYOUT.tss);
    expect(s.tr.limit).toBe(d.limit);
    expect(s.tr.type).toBe(0xb);
    expect(u64(tss(), 4)).toBe(LONG_MODE_LAYOUT.stackTop);
    expect(s.gdt.limit).toBe(table.byteLength - 1);
  });
  it("puts the vCPU in long mode with paging and keeps KVM-owned fields", () => {
    const cur = zeroStruct("kvm_sregs");
    cur.apic_base = 0xfee00900n;
    cur.interrupt_bitmap = [1n, 0n, 0n, 0n];
    const s = longModeSregs(cur);
    expect(s.cr0 & (CR0.PE | CR0.PG)).toBe(CR0.PE | CR0.PG);
    expect(s.cr4 & CR4.PAE).toBe(CR4.PAE);
    expect(s.cr4 & CR4.OSXSAVE).toBe(CR4.OSXSAVE);
    expect(longModeSregs(cur, { osxsave: false }).cr4 & CR4.OSXSAVE).toBe(0n);
    expect(s.efer).toBe(EFER.LME | EFER.LMA);
    expect(s.cr3).toBe(LONG_MODE_LAYOUT.pml4);
    expect(s.apic_base).toBe(0xfee00900n);
    expect(s.interrupt_bitmap).toEqual([1n, 0n, 0n, 0n]);
  });
});

describe("IDT and exception stubs", () => {
  const gates = idt();
  const stubs = exceptionStubs().assemble();
  it.each(Array.from({ length: 32 }, (_, v) => v))("vector %i: a present 64-bit interrupt gate to a stub that reports %i", (v) => {
    const dv = new DataView(gates.buffer);
    const at = v * 16;
    const target = BigInt(dv.getUint16(at, true)) | (BigInt(dv.getUint16(at + 6, true)) << 16n) | (BigInt(dv.getUint32(at + 8, true)) << 32n);
    expect(dv.getUint16(at + 2, true)).toBe(SELECTOR.kernelCode);
    expect(gates[at + 5]).toBe(0x8e);
    const off = Number(target - LONG_MODE_LAYOUT.stubs);
    expect(off).toBe(v * STUB_SIZE);
    // mov al, v (raw B0 ib), then the core-table OUT and HLT, then jmp back to the HLT
    expect([stubs[off], stubs[off + 1]]).toEqual([0xb0, v]);
    const out = decode(stubs, off + 2);
    expect(out.insn).toEqual(insn.outImm8(GUEST_VECTOR_PORT));
    expect(decode(stubs, off + 2 + out.length).insn).toEqual(insn.hlt());
    expect([stubs[off + 5], stubs[off + 6]]).toEqual([0xeb, 0xfd]);
    expect(off + 7 + (stubs[off + 6]! - 256)).toBe(off + 4); // the jmp lands on the hlt
  });
});
