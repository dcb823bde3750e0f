import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { identityPageTables, LONG_MODE_LAYOUT, PTE } from "../src/guest/long-mode.js";
import { GuestPhysSpace } from "../src/model/guest-memory.js";
import { translate, type PagingState } from "../src/model/guest-paging.js";
import { decodeExtra, executeExtra } from "../src/model/guest-extras.js";
import { PhysicalCpu } from "@kvmx/core";

/** The simulated vCPU's page walk over the long-mode image's tables, and the assembler's extra forms. */
function space(userPages = true): GuestPhysSpace {
  const mem = new GuestPhysSpace();
  const slot = mem.add(0, 0n, 2 * 1024 * 1024);
  for (const c of identityPageTables(userPages)) slot.write(c.gpa, c.bytes);
  return mem;
}
const st = (cpl: number, wp = true): PagingState => ({
  cr0: (1n << 31n) | 1n | (wp ? 1n << 16n : 0n),
  cr3: LONG_MODE_LAYOUT.pml4,
  cr4: 1n << 5n,
  efer: (1n << 8n) | (1n << 10n),
  cpl,
});

describe("guest paging (4-level, 2 MiB pages)", () => {
  const mem = space();
  test.prop([fc.bigInt({ min: 0n, max: (1n << 30n) - 1n }), fc.constantFrom("read", "write", "fetch" as const), fc.constantFrom(0, 3)])(
    "the identity map translates every address of the first GiB to itself",
    (lin, access, cpl) => {
      expect(translate(mem, st(cpl), lin, access)).toEqual({ ok: true, gpa: lin });
    },
  );

  test.prop([fc.bigInt({ min: 1n << 30n, max: (1n << 47n) - 1n })])("beyond the first GiB: not present (#PF error code without P)", (lin) => {
    expect(translate(mem, st(0), lin, "read")).toEqual({ ok: false, errorCode: 0 });
    expect(translate(mem, st(3), lin, "write")).toEqual({ ok: false, errorCode: 2 | 4 });
  });

  it("supervisor pages fault at CPL 3 with P|U, and not at CPL 0", () => {
    const sup = space(false);
    expect(translate(sup, st(3), 0x10000n, "fetch")).toEqual({ ok: false, errorCode: 1 | 4 });
    expect(translate(sup, st(0), 0x10000n, "fetch")).toEqual({ ok: true, gpa: 0x10000n });
  });

  it("a read-only page faults on writes at CPL 0 only with CR0.WP", () => {
    const ro = space();
    // clear R/W in PD entry 0 (the first 2 MiB page)
    ro.slots[0]!.write(LONG_MODE_LAYOUT.pd, new Uint8Array(new BigUint64Array([PTE.P | PTE.US | PTE.PS]).buffer));
    expect(translate(ro, st(0, true), 0x1000n, "write")).toEqual({ ok: false, errorCode: 1 | 2 });
    expect(translate(ro, st(0, false), 0x1000n, "write")).toEqual({ ok: true, gpa: 0x1000n });
    expect(translate(ro, st(0, true), 0x1000n, "read")).toEqual({ ok: true, gpa: 0x1000n });
  });

  it("paging off: linear = physical (32 bits)", () => {
    expect(translate(mem, { ...st(0), cr0: 1n }, 0x1_0000_1234n, "read")).toEqual({ ok: true, gpa: 0x1234n });
  });
});

describe("the assembler's extra forms", () => {
  test.prop([fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 0, max: 15 })])("DEC r64: result, ZF/SF/OF, CF untouched", (v, reg) => {
    const cpu = new PhysicalCpu();
    cpu.setGpr(reg, v, 0);
    cpu.rflags = 0x3n; // CF set
    const x = decodeExtra(Uint8Array.of(0x48 | (reg >> 3), 0xff, 0xc8 | (reg & 7)), "long64");
    expect(x).toEqual({ op: "dec-r64", reg, length: 3 });
    expect(executeExtra(cpu, x!)).toBe("ok");
    const r = BigInt.asUintN(64, v - 1n);
    expect(cpu.gpr(reg)).toBe(r);
    expect((cpu.rflags >> 6n) & 1n).toBe(r === 0n ? 1n : 0n);
    expect((cpu.rflags >> 7n) & 1n).toBe(r >> 63n);
    expect((cpu.rflags >> 11n) & 1n).toBe(v === 1n << 63n ? 1n : 0n);
    expect(cpu.rflags & 1n).toBe(1n);
    expect(cpu.rip).toBe(3n);
  });

  it("MOV AL keeps RAX's upper bits; JNZ follows ZF; UD2 is #UD", () => {
    const cpu = new PhysicalCpu();
    cpu.setGpr(0, 0x1122_3344_5566_7788n, 0);
    executeExtra(cpu, decodeExtra(Uint8Array.of(0xb0, 0xaa), "long64")!);
    expect(cpu.gpr(0)).toBe(0x1122_3344_5566_77aan);
    const jnz = decodeExtra(Uint8Array.of(0x0f, 0x85, 0x10, 0, 0, 0), "long64")!;
    cpu.rip = 0x100n;
    cpu.rflags = 0x2n;
    executeExtra(cpu, jnz);
    expect(cpu.rip).toBe(0x100n + 6n + 0x10n);
    cpu.rflags = 0x42n;
    executeExtra(cpu, jnz);
    expect(cpu.rip).toBe(0x116n + 6n);
    expect(executeExtra(cpu, decodeExtra(Uint8Array.of(0x0f, 0x0b), "long64")!)).toBe("UD");
    // 0x48 is DEC EAX outside 64-bit mode: not one of the extra forms there
    expect(decodeExtra(Uint8Array.of(0x48, 0xff, 0xc8), "protected")).toBeUndefined();
  });
});
