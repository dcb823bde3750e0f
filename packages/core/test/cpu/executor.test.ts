import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  EGPR_FIRST,
  NR_GPRS,
  PhysicalCpu,
  Tag,
  XFEATURE_MASK,
  createMapExecEnv,
  execute,
  insn,
  touchesEgpr,
  vid,
  withOptions,
  type CpuidEntry,
  type Instruction,
  type MapExecEnv,
} from "../../src/index.js";
import { arbInstruction } from "./arbitraries.js";

const RAX = 0, RCX = 1, RDX = 2, RSP = 4;
/** An APX part's CPUID, just what the executor consults: XCR0 mask 0xe00e7 | MPX-less, MSR_IMM, XGETBV ECX=1. */
const APX_CPUID: CpuidEntry[] = [
  { function: 7, index: 1, flags: 1, eax: 0, ebx: 0, ecx: 1 << 5, edx: 1 << 21 },
  { function: 0xd, index: 0, flags: 1, eax: 0x000e_02e7, ebx: 0, ecx: 0, edx: 0 },
  { function: 0xd, index: 1, flags: 1, eax: 0b1111, ebx: 0, ecx: 0, edx: 0 },
  { function: 0xd, index: 19, flags: 1, eax: 128, ebx: 960, ecx: 0, edx: 0 },
];
const APX_XCR0 = 0x80007n | 0xe0n; // FP SSE YMM AVX-512 APX

function apxCpu(xcr0 = APX_XCR0): PhysicalCpu {
  const cpu = new PhysicalCpu({ xcr0, tag: Tag.hostUser });
  cpu.setGpr(RSP, 0x7000n, Tag.hostUser);
  return cpu;
}
const env = (over: Parameters<typeof createMapExecEnv>[0] = {}) =>
  createMapExecEnv({ cpuid: APX_CPUID, actor: Tag.guest(0), msrs: [[0x10, 0x1234n], [0x6e0, 0n]], ...over });

/** Every field of the CPU view (the state is private, so toEqual on the view itself would compare nothing). */
const cpuFields = (cpu: PhysicalCpu) => ({
  gpr: Array.from({ length: NR_GPRS }, (_, r) => cpu.gpr(r)),
  tags: Array.from({ length: NR_GPRS }, (_, r) => cpu.gprTag(r)),
  rip: cpu.rip,
  rflags: cpu.rflags,
  xcr0: cpu.xcr0,
  xss: cpu.xss,
  pkru: cpu.pkru,
  cr4Osxsave: cpu.cr4Osxsave,
  mode: cpu.mode,
  cpl: cpu.cpl,
  xinuse: cpu.xinuse,
});

/** Memory is addressed as (base value id, offset); tests write at a plain address. */
const poke = (e: MapExecEnv, addr: bigint, value: bigint, tag: number): void => e.store(vid(addr), 0, vid(value), tag);

function setXcr0Args(cpu: PhysicalCpu, value: bigint, index = 0n) {
  cpu.setGpr(RAX, value & 0xffff_ffffn, Tag.guest(0));
  cpu.setGpr(RDX, value >> 32n, Tag.guest(0));
  cpu.setGpr(RCX, index, Tag.guest(0));
}

describe("APX access gate (docs/facts.md#apx-access-gate)", () => {
  test.prop([arbInstruction])("any EGPR-touching instruction faults #UD with XCR0.APX=0", (i) => {
    fc.pre(touchesEgpr(i));
    const cpu = apxCpu(0xe7n);
    const before = cpuFields(cpu);
    const out = execute(cpu, i, env());
    expect(out).toMatchObject({ kind: "fault", vector: "UD" });
    expect(cpuFields(cpu)).toEqual(before);
  });

  test.prop([arbInstruction, fc.constantFrom("real", "protected", "compat" as const)])(
    "every APX encoding faults #UD outside 64-bit mode even with XCR0.APX=1",
    (i, mode) => {
      fc.pre(touchesEgpr(i) || i.op === "push2" || i.op === "pop2");
      const cpu = apxCpu();
      cpu.mode = mode;
      expect(execute(cpu, i, env())).toMatchObject({ kind: "fault", vector: "UD" });
    },
  );

  it("#UD with CR4.OSXSAVE=0 even when XCR0 has APX, and the #UD precedes an intercept", () => {
    const cpu = apxCpu();
    cpu.cr4Osxsave = false;
    expect(execute(cpu, insn.mov(16, 0), env({ intercepts: () => true }))).toMatchObject({ vector: "UD" });
  });

  it("a REX2 MOV of legacy registers needs APX too; the legacy form does not", () => {
    const cpu = apxCpu(0xe7n);
    expect(execute(cpu, insn.mov(1, 0, true), env())).toMatchObject({ vector: "UD" });
    expect(execute(cpu, insn.mov(1, 0), env())).toEqual({ kind: "ok" });
  });

  it("MOVs keep provenance tags and mark XINUSE[19] on an EGPR write", () => {
    const cpu = apxCpu();
    const e = env();
    cpu.xinuse = 0x3n;
    cpu.setGpr(3, 0xdeadn, Tag.hostKernel);
    expect(execute(cpu, insn.mov(20, 3), e)).toEqual({ kind: "ok" });
    expect([cpu.gpr(20), cpu.gprTag(20)]).toEqual([0xdeadn, Tag.hostKernel]);
    expect(cpu.xinuse & XFEATURE_MASK.APX).toBe(XFEATURE_MASK.APX);
    expect(execute(cpu, insn.store({ base: RSP, disp: -8 }, 20), e)).toEqual({ kind: "ok" });
    expect(e.peek(0x7000n - 8n)).toEqual({ value: 0xdeadn, tag: Tag.hostKernel });
    expect(execute(cpu, insn.movImm(31, 5n), e)).toEqual({ kind: "ok" });
    expect(cpu.gprTag(31)).toBe(Tag.guest(0));
    expect(execute(cpu, insn.load(31, { base: RSP, disp: -8 }), e)).toEqual({ kind: "ok" });
    expect([cpu.gpr(31), cpu.gprTag(31)]).toEqual([0xdeadn, Tag.hostKernel]);
  });

  it("non-canonical memory: #SS through RSP, #GP through other bases", () => {
    const cpu = apxCpu();
    cpu.setGpr(RSP, 0x8000_0000_0000n, Tag.init);
    cpu.setGpr(3, 0x8000_0000_0000n, Tag.init);
    expect(execute(cpu, insn.load(0, { base: RSP, disp: 0 }), env())).toMatchObject({ vector: "SS" });
    expect(execute(cpu, insn.load(0, { base: 3, disp: 0 }), env())).toMatchObject({ vector: "GP" });
  });
});

describe("PUSH2/POP2 (ASSUMPTIONS.push2pop2Rules)", () => {
  const egpr = fc.integer({ min: 0, max: 31 }).filter((r) => r !== RSP);
  test.prop([egpr, egpr, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })])(
    "push2 a,b then pop2 b,a restores both values and tags and RSP",
    (a, b, va, vb) => {
      fc.pre(a !== b);
      const cpu = apxCpu();
      const e = env();
      cpu.setGpr(a, va, Tag.guest(1));
      cpu.setGpr(b, vb, Tag.hostKernel);
      expect(execute(cpu, insn.push2(a, b), e)).toEqual({ kind: "ok" });
      expect(cpu.gpr(RSP)).toBe(0x7000n - 16n);
      cpu.setGpr(a, 0n, Tag.init);
      cpu.setGpr(b, 0n, Tag.init);
      expect(execute(cpu, insn.pop2(b, a), e)).toEqual({ kind: "ok" });
      expect([cpu.gpr(a), cpu.gprTag(a), cpu.gpr(b), cpu.gprTag(b)]).toEqual([va, Tag.guest(1), vb, Tag.hostKernel]);
      expect(cpu.gpr(RSP)).toBe(0x7000n);
    },
  );
  it("RSP as an operand and POP2 into one register twice are #UD; an unaligned stack is #GP", () => {
    expect(execute(apxCpu(), insn.push2(RSP, 16), env())).toMatchObject({ vector: "UD" });
    expect(execute(apxCpu(), insn.pop2(16, 16), env())).toMatchObject({ vector: "UD" });
    expect(execute(apxCpu(), insn.push2(16, 16), env())).toEqual({ kind: "ok" });
    const cpu = apxCpu();
    cpu.setGpr(RSP, 0x7008n, Tag.init);
    expect(execute(cpu, insn.push2(16, 17), env())).toMatchObject({ vector: "GP" });
  });
  it("is #UD with XCR0.APX=0 even on legacy registers", () => {
    expect(execute(apxCpu(0xe7n), insn.push2(0, 3), env())).toMatchObject({ vector: "UD" });
  });
});

describe("XSETBV / XGETBV", () => {
  it("OSXSAVE=0 → #UD and CPL 3 → #GP, both before an intercepted exit", () => {
    const cpu = apxCpu();
    cpu.cr4Osxsave = false;
    expect(execute(cpu, insn.xsetbv(), env({ intercepts: () => true }))).toMatchObject({ vector: "UD" });
    const user = apxCpu();
    user.cpl = 3;
    expect(execute(user, insn.xsetbv(), env({ intercepts: () => true }))).toMatchObject({ vector: "GP" });
  });
  it("an intercepted XSETBV exits without changing XCR0 even for an invalid value (KVM checks it)", () => {
    const cpu = apxCpu();
    setXcr0Args(cpu, 0x2n);
    expect(execute(cpu, insn.xsetbv(), env({ intercepts: (i) => i.op === "xsetbv" }))).toEqual({ kind: "exit", reason: "xsetbv" });
    expect(cpu.xcr0).toBe(APX_XCR0);
  });
  it.each([
    [0x3n, 1n, "index-not-zero"],
    [0x2n, 0n, "fp-clear"],
    [0x5n, 0n, "ymm-without-sse"],
    [0x1bn, 0n, "unsupported-bit"],
    [0x27n, 0n, "avx512-incomplete"],
    [0x80000n | 0x3n | 0x10000n, 0n, "unsupported-bit"],
  ])("XCR0 0x%s (ECX=%s) → #GP %s", (value, index, rule) => {
    const cpu = apxCpu();
    setXcr0Args(cpu, value, index);
    const out = execute(cpu, insn.xsetbv(), env());
    expect(out).toMatchObject({ kind: "fault", vector: "GP" });
    expect(out.kind === "fault" && out.reason).toContain(rule);
    expect(cpu.xcr0).toBe(APX_XCR0);
  });
  it.each([["keep"], ["clear"]] as const)("XCR0[19] 1→0 with xcr0ApxDisable=%s, then 0→1", (mode) => {
    const cpu = apxCpu();
    cpu.setGpr(17, 0x17n, Tag.guest(0));
    setXcr0Args(cpu, 0xe7n);
    const e = env({ options: withOptions({ xcr0ApxDisable: mode }) });
    expect(execute(cpu, insn.xsetbv(), e)).toEqual({ kind: "ok" });
    expect(cpu.xcr0).toBe(0xe7n);
    expect(execute(cpu, insn.mov(0, 17), e)).toMatchObject({ vector: "UD" });
    setXcr0Args(cpu, APX_XCR0);
    expect(execute(cpu, insn.xsetbv(), e)).toEqual({ kind: "ok" });
    expect(execute(cpu, insn.mov(0, 17), e)).toEqual({ kind: "ok" });
    expect([cpu.gpr(0), cpu.gprTag(0)]).toEqual(mode === "keep" ? [0x17n, Tag.guest(0)] : [0n, Tag.init]);
  });
  it("XGETBV reads XCR0 (ECX=0) and XCR0 & XINUSE (ECX=1)", () => {
    const cpu = apxCpu();
    cpu.xinuse = 0x3n;
    cpu.setGpr(RCX, 0n, Tag.init);
    expect(execute(cpu, insn.xgetbv(), env())).toEqual({ kind: "ok" });
    expect([cpu.gpr(RAX), cpu.gpr(RDX)]).toEqual([APX_XCR0 & 0xffff_ffffn, 0n]);
    cpu.setGpr(RCX, 1n, Tag.init);
    execute(cpu, insn.xgetbv(), env());
    expect(cpu.gpr(RAX)).toBe(0x3n);
    cpu.setGpr(RCX, 2n, Tag.init);
    expect(execute(cpu, insn.xgetbv(), env())).toMatchObject({ vector: "GP" });
  });
});

describe("XSAVE / XRSTOR (docs/facts.md#xsave-xrstor: RFBM = EDX:EAX & XCR0)", () => {
  const AREA = 0x10000n;
  const egprValues = fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 16, maxLength: 16 });
  const tags = fc.array(fc.constantFrom(Tag.init, Tag.hostUser, Tag.hostKernel, Tag.guest(0), Tag.guest(3)), { minLength: 16, maxLength: 16 });

  function saveRestore(values: bigint[], tagsIn: number[], xcr0: bigint) {
    const cpu = apxCpu(xcr0);
    const e = env();
    cpu.setGpr(3, AREA, Tag.init);
    values.forEach((v, k) => cpu.setGpr(EGPR_FIRST + k, v, tagsIn[k]!));
    cpu.xinuse |= XFEATURE_MASK.APX;
    setXcr0Args(cpu, -1n & ((1n << 64n) - 1n));
    cpu.setGpr(RCX, 0n, Tag.init);
    const saved = execute(cpu, insn.xsave({ base: 3, disp: 0 }), e);
    for (let r = EGPR_FIRST; r < 32; r++) cpu.setGpr(r, 0xbadn, Tag.hostKernel);
    const restored = execute(cpu, insn.xrstor({ base: 3, disp: 0 }), e);
    return { cpu, e, saved, restored };
  }

  test.prop([egprValues, tags])("with XCR0.APX=1, XSAVE then XRSTOR restores R16–R31 and their tags", (values, tg) => {
    const { cpu, e, saved, restored } = saveRestore(values, tg, APX_XCR0);
    expect([saved, restored]).toEqual([{ kind: "ok" }, { kind: "ok" }]);
    expect((e.peek(AREA + 512n).value & XFEATURE_MASK.APX) !== 0n).toBe(true);
    for (let k = 0; k < 16; k++) {
      expect(cpu.gpr(EGPR_FIRST + k)).toBe(values[k]);
      expect(cpu.gprTag(EGPR_FIRST + k)).toBe(tg[k]);
      expect(e.peek(AREA + 960n + BigInt(8 * k))).toEqual({ value: values[k], tag: tg[k] });
    }
  });

  test.prop([egprValues, tags])("with XCR0.APX=0 component 19 is neither saved nor restored", (values, tg) => {
    const { cpu, e } = saveRestore(values, tg, 0xe7n);
    expect(e.peek(AREA + 512n).value & XFEATURE_MASK.APX).toBe(0n);
    expect(e.memory.has(AREA + 960n)).toBe(false);
    for (let r = EGPR_FIRST; r < 32; r++) expect([cpu.gpr(r), cpu.gprTag(r)]).toEqual([0xbadn, Tag.hostKernel]);
  });

  it("XSAVE writes XSTATE_BV = XINUSE ∩ RFBM and keeps bits outside RFBM", () => {
    const cpu = apxCpu();
    const e = env();
    cpu.setGpr(3, AREA, Tag.init);
    poke(e, AREA + 512n, 1n << 9n, Tag.init); // PKRU bit, outside RFBM here
    cpu.xinuse = 0x3n; // APX not in use
    setXcr0Args(cpu, 0x80003n);
    expect(execute(cpu, insn.xsave({ base: 3, disp: 0 }), e)).toEqual({ kind: "ok" });
    expect(e.peek(AREA + 512n).value).toBe((1n << 9n) | 0x3n);
  });

  it("XRSTOR with XSTATE_BV[19]=0 loads zeros with the init tag", () => {
    const cpu = apxCpu();
    const e = env();
    cpu.setGpr(3, AREA, Tag.init);
    for (let r = EGPR_FIRST; r < 32; r++) cpu.setGpr(r, 7n, Tag.hostUser);
    poke(e, AREA + 512n, 0x3n, Tag.init);
    setXcr0Args(cpu, APX_XCR0);
    expect(execute(cpu, insn.xrstor({ base: 3, disp: 0 }), e)).toEqual({ kind: "ok" });
    for (let r = EGPR_FIRST; r < 32; r++) expect([cpu.gpr(r), cpu.gprTag(r)]).toEqual([0n, Tag.init]);
    expect(cpu.xinuse & XFEATURE_MASK.APX).toBe(0n);
  });

  it("XRSTOR #GPs on XSTATE_BV outside XCR0, non-zero XCOMP_BV and an unaligned area", () => {
    const cpu = apxCpu(0xe7n);
    const e = env();
    cpu.setGpr(3, AREA, Tag.init);
    setXcr0Args(cpu, APX_XCR0);
    poke(e, AREA + 512n, 0x80003n, Tag.init);
    expect(execute(cpu, insn.xrstor({ base: 3, disp: 0 }), e)).toMatchObject({ vector: "GP" });
    poke(e, AREA + 512n, 0x3n, Tag.init);
    poke(e, AREA + 520n, 1n, Tag.init);
    expect(execute(cpu, insn.xrstor({ base: 3, disp: 0 }), e)).toMatchObject({ vector: "GP" });
    expect(execute(cpu, insn.xrstor({ base: 3, disp: 8 }), e)).toMatchObject({ vector: "GP" });
  });
});

describe("MSRs, CPUID, HLT, OUT, VMCALL", () => {
  it("RDMSR/WRMSR use ECX and EDX:EAX; unknown MSRs #GP; CPL 3 #GP", () => {
    const cpu = apxCpu();
    const e = env();
    cpu.setGpr(RCX, 0x10n, Tag.init);
    expect(execute(cpu, insn.rdmsr(), e)).toEqual({ kind: "ok" });
    expect([cpu.gpr(RAX), cpu.gpr(RDX)]).toEqual([0x1234n, 0n]);
    cpu.setGpr(RCX, 0x99n, Tag.init);
    expect(execute(cpu, insn.rdmsr(), e)).toMatchObject({ vector: "GP" });
    cpu.cpl = 3;
    cpu.setGpr(RCX, 0x10n, Tag.init);
    expect(execute(cpu, insn.rdmsr(), e)).toMatchObject({ vector: "GP" });
  });
  it("WRMSRNS imm from R17 reaches the MSR; intercepted it exits (the VMX fastpath's case)", () => {
    const cpu = apxCpu();
    const e = env();
    cpu.setGpr(17, 0xabcn, Tag.guest(0));
    expect(execute(cpu, insn.wrmsrnsImm(0x6e0, 17), e)).toEqual({ kind: "ok" });
    expect(e.msrs.get(0x6e0)).toBe(0xabcn);
    expect(execute(cpu, insn.wrmsrnsImm(0x6e0, 17), env({ intercepts: () => true }))).toEqual({ kind: "exit", reason: "wrmsrns-imm" });
    expect(execute(cpu, insn.rdmsrImm(18, 0x10), e)).toEqual({ kind: "ok" });
    expect([cpu.gpr(18), cpu.gprTag(18)]).toEqual([0x1234n, Tag.guest(0)]);
  });
  it("MSR-immediate forms #UD without CPUID MSR_IMM", () => {
    const cpu = apxCpu();
    expect(execute(cpu, insn.rdmsrImm(0, 0x10), env({ cpuid: [] }))).toMatchObject({ vector: "UD" });
  });
  it("CPUID writes EAX..EDX from the table; HLT halts; OUT logs AL; VMCALL #UDs unless intercepted", () => {
    const cpu = apxCpu();
    const e = env();
    cpu.setGpr(RAX, 0xdn, Tag.init);
    cpu.setGpr(RCX, 19n, Tag.init);
    expect(execute(cpu, insn.cpuid(), e)).toEqual({ kind: "ok" });
    expect([cpu.gpr(RAX), cpu.gpr(3), cpu.gpr(RCX), cpu.gpr(RDX)]).toEqual([128n, 960n, 0n, 0n]);
    expect(execute(cpu, insn.hlt(), e)).toEqual({ kind: "ok", halted: true });
    cpu.setGpr(RAX, 0x1ffn, Tag.init);
    expect(execute(cpu, insn.outImm8(0x80), e)).toEqual({ kind: "ok" });
    expect(e.ioLog).toEqual([{ port: 0x80, value: 0xff }]);
    expect(execute(cpu, insn.vmcall(), e)).toMatchObject({ vector: "UD" });
    expect(execute(cpu, insn.vmcall(), env({ intercepts: () => true }))).toEqual({ kind: "exit", reason: "vmcall" });
    cpu.cpl = 3;
    expect(execute(cpu, insn.outDx(), e)).toMatchObject({ vector: "GP" });
  });
});

describe("executor never throws on the subset", () => {
  test.prop([arbInstruction, fc.boolean(), fc.constantFrom(0, 3), fc.constantFrom("long64", "compat" as const)])(
    "returns an outcome for any instruction and state",
    (i: Instruction, osx, cpl, mode) => {
      const cpu = apxCpu();
      cpu.cr4Osxsave = osx;
      cpu.cpl = cpl;
      cpu.mode = mode;
      expect(["ok", "fault", "exit"]).toContain(execute(cpu, i, env()).kind);
    },
  );
});

describe("XRSTOR compacted form", () => {
  it("finds component 19 at its compacted offset (after PKRU here) and checks XCOMP_BV", async () => {
    const { cpuProfile, xsaveLayout } = await import("../../src/index.js");
    const dmr = cpuProfile("dmr");
    const cpu = new PhysicalCpu({ xcr0: 0x802e7n });
    const e = createMapExecEnv({ cpuid: [...dmr.cpuid] });
    const AREA = 0x20000n;
    cpu.setGpr(3, AREA, Tag.init);
    const features = 0x80203n; // FP SSE PKRU APX
    const apx = xsaveLayout(dmr, features, "compacted").components.find((c) => c.index === 19)!;
    expect(apx.offset).toBe(584);
    poke(e, AREA + 512n, 0x80000n, Tag.init);
    poke(e, AREA + 520n, (1n << 63n) | features, Tag.init);
    for (let k = 0; k < 16; k++) poke(e, AREA + BigInt(apx.offset + 8 * k), BigInt(100 + k), Tag.guest(2));
    cpu.setGpr(RAX, 0xffff_ffffn, Tag.init);
    cpu.setGpr(RDX, 0xffff_ffffn, Tag.init);
    expect(execute(cpu, insn.xrstor({ base: 3, disp: 0 }), e)).toEqual({ kind: "ok" });
    expect([cpu.gpr(16), cpu.gpr(31), cpu.gprTag(31)]).toEqual([100n, 115n, Tag.guest(2)]);
    poke(e, AREA + 520n, (1n << 63n) | features | (1n << 18n), Tag.init);
    expect(execute(cpu, insn.xrstor({ base: 3, disp: 0 }), e)).toMatchObject({ vector: "GP" });
  });
});
