import { fc, test as ftest } from "@fast-check/vitest";
import { describe, expect, test } from "vitest";
import { createVcpu, type VcpuState } from "../../src/kvm/vcpu.js";
import {
  clearAvailableRegisters, gprRead, gprWrite, e32Write, guestOwnedBits, isAvailable, isDirty, markAvailable, markDirty, markForReload,
  pdptrRead, readCr0Bits, readCr3, readCr4Bits, registerRead, registerReadRaw, registerWrite, registerWriteRaw,
  resetDirtyRegisters, ripRead, ripWrite, rspRead, rspWrite, type RegCacheCtx,
} from "../../src/kvm/register-cache.js";
import { regBit } from "../../src/kvm/regs.js";

/** A vCPU with a recording cache_reg that loads from a fake "VMCS". */
function setup(opts: { pre?: boolean; egprsInRegs?: boolean } = {}) {
  const v = createVcpu({ id: 0, design: "t", pre: opts.pre ?? false, egprsInRegs: opts.egprsInRegs ?? false, fpstateHasApx: false, cpuid: { xcr0Mask: 3n, apx: false } });
  const calls: number[] = [];
  const warnings: string[] = [];
  const vmcs = { rsp: 0x7000n, rip: 0x1234n, cr3: 0xabc000n, cr0: 0x8000_0031n, cr4: 0x20n };
  const ctx: RegCacheCtx = {
    vcpu: v,
    guestTag: 16,
    warn: (m) => warnings.push(m),
    cacheReg: (reg) => {
      calls.push(reg);
      markAvailable(v, reg); // the vendor contract: available first, then load
      const l = v.layout;
      if (reg === 4) v.regs.set(4, vmcs.rsp);
      else if (reg === l.RIP) l.pre ? v.regs.set(l.RIP, vmcs.rip) : (v.rip = vmcs.rip);
      else if (reg === l.CR3) v.cr3 = vmcs.cr3;
      else if (reg === l.CR0) v.cr0 = vmcs.cr0;
      else if (reg === l.CR4) v.cr4 = vmcs.cr4;
      else if (reg === l.PDPTR) v.setPdptr(1, 0x5000n);
    },
  };
  return { v, ctx, calls, warnings, vmcs };
}

describe("avail/dirty table (docs/facts.md#avail-dirty)", () => {
  test("creation: both bitmaps all ones (the only place eager registers become available)", () => {
    const { v } = setup();
    expect(v.regsAvail).toBe(v.layout.allMask);
    expect(v.regsDirty).toBe(v.layout.allMask);
  });

  test("mark_available sets avail only; mark_dirty sets both; mark_for_reload clears both", () => {
    const { v } = setup();
    v.regsAvail = 0n;
    v.regsDirty = 0n;
    markAvailable(v, 4);
    expect([isAvailable(v, 4), isDirty(v, 4)]).toEqual([true, false]);
    markDirty(v, 5);
    expect([isAvailable(v, 5), isDirty(v, 5)]).toEqual([true, true]);
    markForReload(v, 5);
    expect([isAvailable(v, 5), isDirty(v, 5)]).toEqual([false, false]);
  });

  test("clear_available_registers(mask) only clears avail; reset_dirty_registers zeroes dirty", () => {
    const { v } = setup();
    clearAvailableRegisters(v, regBit(4) | regBit(16));
    expect(isAvailable(v, 4)).toBe(false);
    expect(isAvailable(v, 16)).toBe(false);
    expect(isAvailable(v, 0)).toBe(true);
    expect(isDirty(v, 4)).toBe(true); // avail=0/dirty=1 is the caller's bug to avoid: the helper does not hide it
    resetDirtyRegisters(v);
    expect(v.regsDirty).toBe(0n);
  });

  test("register_read_raw calls cache_reg only when unavailable; write_raw marks dirty", () => {
    const { v, ctx, calls } = setup();
    resetDirtyRegisters(v);
    expect(registerReadRaw(ctx, 4)).toBe(0n); // available from creation: no cache_reg
    expect(calls).toEqual([]);
    clearAvailableRegisters(v, regBit(4));
    expect(registerReadRaw(ctx, 4)).toBe(0x7000n);
    expect(calls).toEqual([4]);
    expect(registerReadRaw(ctx, 4)).toBe(0x7000n);
    expect(calls).toEqual([4]);
    registerWriteRaw(ctx, 9, 0x99n);
    expect([isAvailable(v, 9), isDirty(v, 9), v.regs.get(9)]).toEqual([true, true, 0x99n]);
  });

  test("out-of-range raw access warns: read returns 0, write is dropped (POST limit 16, PRE 17)", () => {
    const post = setup();
    expect(registerReadRaw(post.ctx, 16)).toBe(0n);
    registerWriteRaw(post.ctx, 17, 5n);
    expect(post.warnings).toHaveLength(2);
    const pre = setup({ pre: true });
    pre.v.regs.set(16, 0x42n); // PRE keeps RIP in regs[16]: in range for _raw
    expect(registerReadRaw(pre.ctx, 16)).toBe(0x42n);
    expect(pre.warnings).toHaveLength(0);
    expect(registerReadRaw(pre.ctx, 17)).toBe(0n);
    expect(pre.warnings).toHaveLength(1);
    const apx = setup({ egprsInRegs: true });
    registerWriteRaw(apx.ctx, 31, 0x31n);
    expect(apx.v.regs.get(31)).toBe(0x31n);
    expect(apx.warnings).toHaveLength(0);
  });

  test("register_read/write mask to 32 bits outside 64-bit mode; _raw and RIP/RSP helpers never mask", () => {
    const { v, ctx } = setup();
    v.regs.set(0, 0xffff_ffff_1234_5678n);
    expect(registerRead(ctx, 0)).toBe(0xffff_ffff_1234_5678n);
    v.longMode = false;
    expect(registerRead(ctx, 0)).toBe(0x1234_5678n);
    expect(registerReadRaw(ctx, 0)).toBe(0xffff_ffff_1234_5678n);
    registerWrite(ctx, 1, 0xaaaa_bbbb_cccc_ddddn);
    expect(v.regs.get(1)).toBe(0xcccc_ddddn);
    rspWrite(ctx, 0x1_0000_0000n);
    expect(rspRead(ctx)).toBe(0x1_0000_0000n);
    ripWrite(ctx, 0x2_0000_0000n);
    expect(ripRead(ctx)).toBe(0x2_0000_0000n);
  });

  test("rip_read uses cache_reg(RIP) when unavailable; POST keeps `rip`, PRE keeps regs[16]", () => {
    for (const pre of [false, true]) {
      const { v, ctx, calls } = setup({ pre });
      clearAvailableRegisters(v, regBit(v.layout.RIP));
      resetDirtyRegisters(v);
      expect(ripRead(ctx)).toBe(0x1234n);
      expect(calls).toEqual([v.layout.RIP]);
      ripWrite(ctx, 0x2000n);
      expect(isDirty(v, v.layout.RIP)).toBe(true);
      if (pre) expect(v.regs.get(16)).toBe(0x2000n);
      else expect([v.rip, v.regs.get(15)]).toEqual([0x2000n, 0n]);
    }
  });

  test("per-GPR accessors never call cache_reg and never dirty; e<x>_write zero-extends", () => {
    const { v, calls } = setup();
    resetDirtyRegisters(v);
    clearAvailableRegisters(v, v.layout.allMask);
    gprWrite(v, 3, 0x33n, 16);
    expect(gprRead(v, 3)).toBe(0x33n);
    e32Write(v, 0, 0x1_2345_6789n, 16);
    expect(v.regs.get(0)).toBe(0x2345_6789n);
    expect(v.regsDirty).toBe(0n);
    expect(calls).toEqual([]);
  });

  test("CR0/CR4 reads call cache_reg only for guest-owned bits (the model's guests own none); CR3 and PDPTR whenever unavailable", () => {
    const { v, ctx, calls } = setup();
    const l = v.layout;
    clearAvailableRegisters(v, regBit(l.CR0) | regBit(l.CR4) | regBit(l.CR3) | regBit(l.PDPTR));
    v.cr0 = 0x8000_0011n;
    v.cr4 = 0x40n;
    expect([guestOwnedBits(v, "cr0"), guestOwnedBits(v, "cr4")]).toEqual([0n, 0n]);
    // Every CR0/CR4 bit is host-owned, so the cached value answers even while CR0/CR4 are unavailable.
    expect(readCr0Bits(ctx, 0x1n)).toBe(0x1n);
    expect(readCr0Bits(ctx, 0x8n)).toBe(0n); // TS: not from the "VMCS" (which has 0x8000_0031)
    expect(readCr4Bits(ctx, 0x60n)).toBe(0x40n);
    expect(calls).toEqual([]);
    expect([isAvailable(v, l.CR0), isAvailable(v, l.CR4)]).toEqual([false, false]);
    expect(readCr3(ctx)).toBe(0xabc000n);
    expect(pdptrRead(ctx, 1)).toBe(0x5000n);
    expect(calls).toEqual([l.CR3, l.PDPTR]);
    expect(readCr3(ctx)).toBe(0xabc000n); // available now: no second cache_reg
    expect(calls).toEqual([l.CR3, l.PDPTR]);
  });

  // Needs a way to give a vCPU guest-owned CR0 bits: core's guestOwnedBits is 0 for every vCPU since
  // the packed-state rewrite (it was vendor state before).
  test.todo("CR0 with TS guest-owned: readCr0Bits(0x8) calls cache_reg(CR0) while CR0 is unavailable");
});

type Op = { k: "read" | "write" | "rspw" | "ripw" | "ripr" | "clear" | "reset" | "reload"; reg: number; val: bigint };
const opArb: fc.Arbitrary<Op> = fc.record({
  k: fc.constantFrom("read", "write", "rspw", "ripw", "ripr", "clear", "reset", "reload"),
  reg: fc.integer({ min: 0, max: 15 }),
  val: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
});

describe("register-cache laws (property)", () => {
  const VENDOR_LAZY = regBit(4) | regBit(16) | regBit(17) | regBit(18) | regBit(19) | regBit(20);
  ftest.prop([fc.array(opArb, { maxLength: 40 }), fc.boolean()])(
    "the helpers never create avail=0/dirty=1 and a read returns the last write",
    (ops, pre) => {
      const { v, ctx } = setup({ pre });
      const last = new Map<number, bigint>();
      for (const o of ops) {
        switch (o.k) {
          case "read": {
            const got = registerReadRaw(ctx, o.reg);
            if (last.has(o.reg)) expect(got).toBe(last.get(o.reg));
            break;
          }
          case "write":
            registerWriteRaw(ctx, o.reg, o.val);
            last.set(o.reg, o.val);
            break;
          case "rspw":
            rspWrite(ctx, o.val);
            last.set(4, o.val);
            break;
          case "ripw":
            ripWrite(ctx, o.val);
            expect(ripRead(ctx)).toBe(o.val);
            break;
          case "ripr":
            ripRead(ctx);
            break;
          case "clear":
            // What vendors do after an exit: only registers that are not dirty (the write-back ran).
            resetDirtyRegisters(v);
            clearAvailableRegisters(v, VENDOR_LAZY);
            last.delete(4);
            break;
          case "reset":
            resetDirtyRegisters(v);
            break;
          case "reload":
            markForReload(v, o.reg);
            last.delete(o.reg);
            break;
        }
        expect(v.regsDirty & ~v.regsAvail).toBe(0n);
      }
    },
  );
});

void ({} as VcpuState);
