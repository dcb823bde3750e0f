import { describe, expect, test } from "vitest";
import { cpuProfile, profileFromCpuid } from "../../src/cpu/cpu-profiles.js";
import { XFEATURE_MASK } from "../../src/cpu/xfeatures.js";
import { KVM_SUPPORTED_XCR0 } from "../../src/cpu/xcr0-rules.js";
import { createVcpu } from "../../src/kvm/vcpu.js";
import { withOptions, type ModelOptions } from "../../src/model-options.js";
import {
  kvmCheckSyncRegs, kvmGetRegs, kvmGetXcrs, kvmGetXsave, kvmSetRegs, kvmSetXcrs, kvmSetXsave, kvmXsave2Size,
  type VcpuIoctlCtx,
} from "../../src/kvm/uapi-ops.js";
import { markAvailable } from "../../src/kvm/register-cache.js";
import type { EgprHome } from "../../src/kvm/designs.js";

/**
 * A host CPU without XSAVE, as QEMU's qemu64 model is: zen's CPUID with CPUID.1:ECX.XSAVE/OSXSAVE/AVX
 * clear and a leaf 0xD that enumerates nothing (KVM_GET_SUPPORTED_CPUID of such a host).
 */
const noXsaveHost = () => {
  const XSAVE_OSXSAVE_AVX = (1 << 26) | (1 << 27) | (1 << 28);
  const cpuid = cpuProfile("zen").cpuid
    .filter((e) => e.function !== 0xd || e.index === 0)
    .map((e) => (e.function === 1 ? { ...e, ecx: (e.ecx & ~XSAVE_OSXSAVE_AVX) >>> 0 } : e.function === 0xd ? { ...e, eax: 0, ebx: 576, ecx: 576, edx: 0 } : e));
  return profileFromCpuid(cpuid, { name: "no-xsave" });
};

function ctxFor(opts: { home?: EgprHome; options?: Partial<ModelOptions>; protectedState?: boolean; profile?: string } = {}) {
  const profile = opts.profile === "no-xsave" ? noXsaveHost() : cpuProfile(opts.profile ?? "dmr");
  const supported = profile.supportedXcr0 & KVM_SUPPORTED_XCR0;
  const home = opts.home ?? "regs";
  const vcpu = createVcpu({ id: 0, design: "t", egprsInRegs: home === "regs", fpstateHasApx: home === "fpstate", cpuid: { xcr0Mask: supported, apx: true } });
  const warnings: string[] = [];
  const ctx: VcpuIoctlCtx = {
    vcpu, profile, supportedXcr0: supported, hostXcr0: profile.supportedXcr0, options: withOptions(opts.options), egprHome: home,
    protectedState: opts.protectedState ?? false, guestTag: 16,
    cacheReg: (reg) => markAvailable(vcpu, reg), warn: (m) => warnings.push(m),
  };
  return { ctx, vcpu, warnings };
}

const imageWith = (c: VcpuIoctlCtx, edit: (bytes: Uint8Array, dv: DataView) => void): Uint8Array => {
  const r = kvmGetXsave(c, kvmXsave2Size(c));
  if (!r.ok) throw new Error(r.reason);
  const b = r.value.image.bytes.slice();
  edit(b, new DataView(b.buffer));
  return b;
};

describe("KVM_GET_XSAVE / KVM_GET_XSAVE2", () => {
  test("XSAVE2 size is max(4096, standard size of supported XCR0); GET_XSAVE with 4096 fails when AMX makes it bigger", () => {
    const { ctx } = ctxFor();
    expect(kvmXsave2Size(ctx)).toBe(2816 + 8192);
    const r = kvmGetXsave(ctx, 4096);
    expect(r.ok ? "ok" : r.errno).toBe("EINVAL");
    // A host without AMX (XCR0 0xe7: 2688 bytes) gets the 4096-byte minimum; Sapphire Rapids with AMX does not.
    const small = ctxFor({ profile: "kvm-pvm" }).ctx;
    expect(kvmXsave2Size(small)).toBe(4096);
    expect(kvmGetXsave(small, 4096).ok).toBe(true);
    const spr = ctxFor({ profile: "spr" }).ctx;
    expect(kvmXsave2Size(spr)).toBe(11008);
    expect(kvmGetXsave(spr, 4096).ok).toBe(false);
  });

  test("init legacy fields for absent FP/SSE, XCOMP_BV 0, component 19 synthesised from regs[16..31]", () => {
    const { ctx, vcpu } = ctxFor();
    vcpu.regs.set(16, 0x1616n);
    vcpu.regs.set(31, 0x3131n);
    const r = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    if (!r.ok) throw new Error(r.reason);
    const img = r.value.image;
    expect(img.fcw).toBe(0x37f);
    expect(img.mxcsr).toBe(0x1f80);
    expect(img.xcompBv).toBe(0n);
    expect(img.xstateBv & XFEATURE_MASK.APX).toBe(XFEATURE_MASK.APX); // regs[] design: always reported
    expect(img.apxRegisters()![0]).toBe(0x1616n);
    expect(img.apxRegisters()![15]).toBe(0x3131n);
    expect(img.xstateBv & XFEATURE_MASK.PKRU).toBe(0n); // not in a fresh vCPU's fpstate header
  });

  test("fpstate home: XSTATE_BV[19] only when the fpstate holds component 19", () => {
    const { ctx, vcpu } = ctxFor({ home: "fpstate" });
    let r = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    expect(r.ok && r.value.image.xstateBv & XFEATURE_MASK.APX).toBe(0n);
    vcpu.fpstate.xstateBv |= XFEATURE_MASK.APX;
    vcpu.fpstate.egpr.set(0, 0x42n);
    r = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    expect(r.ok && r.value.image.apxRegisters()![0]).toBe(0x42n);
  });

  test("a guest whose CPUID lacks APX never sees component 19 in GET", () => {
    const { ctx, vcpu } = ctxFor();
    vcpu.cpuid = { xcr0Mask: ctx.supportedXcr0 & ~XFEATURE_MASK.APX, apx: false };
    vcpu.regs.set(16, 0x99n);
    const r = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    expect(r.ok && r.value.image.xstateBv & XFEATURE_MASK.APX).toBe(0n);
    expect(r.ok && r.value.image.apxRegisters()![0]).toBe(0n);
  });
});

describe("KVM_SET_XSAVE", () => {
  test("-EINVAL rules: XSTATE_BV outside KVM-supported, XCOMP_BV ≠ 0, reserved header byte, MXCSR reserved bits", () => {
    const { ctx } = ctxFor();
    const errno = (b: Uint8Array) => {
      const r = kvmSetXsave(ctx, b, 16);
      return r.ok ? "ok" : r.errno;
    };
    expect(errno(imageWith(ctx, () => undefined))).toBe("ok");
    expect(errno(imageWith(ctx, (_b, dv) => dv.setBigUint64(512, XFEATURE_MASK.BNDREGS | 3n, true)))).toBe("EINVAL");
    expect(errno(imageWith(ctx, (_b, dv) => dv.setBigUint64(520, 1n, true)))).toBe("EINVAL");
    expect(errno(imageWith(ctx, (b) => (b[560] = 1)))).toBe("EINVAL");
    expect(errno(imageWith(ctx, (_b, dv) => { dv.setBigUint64(512, 3n, true); dv.setUint32(24, 0x1_0000, true); }))).toBe("EINVAL");
    // MXCSR is only checked when FP/SSE/YMM are present.
    expect(errno(imageWith(ctx, (_b, dv) => { dv.setBigUint64(512, 0n, true); dv.setUint32(24, 0x1_0000, true); }))).toBe("ok");
  });

  test("XSTATE_BV is checked against KVM-supported, not guest-supported XCR0", () => {
    const { ctx, vcpu } = ctxFor();
    vcpu.cpuid = { xcr0Mask: 3n, apx: false };
    const r = kvmSetXsave(ctx, imageWith(ctx, (_b, dv) => dv.setBigUint64(512, 3n | XFEATURE_MASK.APX, true)), 16);
    expect(r.ok).toBe(true);
  });

  // What KVM does is not an assumption any more (docs/facts.md#apx-uapi-set-absent): regs[] designs
  // (v4) leave R16..R31 alone, an fpstate home returns component 19 to its init state like any absent
  // component. setXsaveApxAbsent is only what the guest should see (apply-event.ts), so both of its
  // alternatives give the same vCPU state here.
  test("component 19 present: regs[16..31] set; absent: regs[] left alone (whatever setXsaveApxAbsent says)", () => {
    for (const alt of ["leave-unchanged", "init-zeros"] as const) {
      const { ctx, vcpu } = ctxFor({ options: { setXsaveApxAbsent: alt } });
      const set = imageWith(ctx, (_b, dv) => { dv.setBigUint64(512, 3n | XFEATURE_MASK.APX, true); dv.setBigUint64(960, 0xabcn, true); });
      expect(kvmSetXsave(ctx, set, 16)).toEqual({ ok: true, value: { apxPresent: true } });
      expect([vcpu.regs.get(16), vcpu.regs.tag(16)]).toEqual([0xabcn, 16]);
      const absent = imageWith(ctx, (_b, dv) => dv.setBigUint64(512, 3n, true));
      expect(kvmSetXsave(ctx, absent, 16)).toEqual({ ok: true, value: { apxPresent: false } });
      expect([vcpu.regs.get(16), vcpu.regs.tag(16)]).toEqual([0xabcn, 16]);
    }
  });

  test("fpstate home: component 19 present fills the buffer; absent returns it to init (zeros, XSTATE_BV[19]=0)", () => {
    for (const alt of ["leave-unchanged", "init-zeros"] as const) {
      const { ctx, vcpu } = ctxFor({ home: "fpstate", options: { setXsaveApxAbsent: alt } });
      const set = imageWith(ctx, (_b, dv) => { dv.setBigUint64(512, 3n | XFEATURE_MASK.APX, true); dv.setBigUint64(960 + 8, 0xabcn, true); });
      expect(kvmSetXsave(ctx, set, 16).ok).toBe(true);
      expect([vcpu.fpstate.egpr.get(1), vcpu.fpstate.egpr.tag(1)]).toEqual([0xabcn, 16]);
      expect(vcpu.fpstate.xstateBv & XFEATURE_MASK.APX).toBe(XFEATURE_MASK.APX);
      const absent = imageWith(ctx, (_b, dv) => dv.setBigUint64(512, 3n, true));
      expect(kvmSetXsave(ctx, absent, 16).ok).toBe(true);
      expect(vcpu.fpstate.egpr.toArray()).toEqual(new Array<bigint>(16).fill(0n));
      expect(vcpu.fpstate.xstateBv & XFEATURE_MASK.APX).toBe(0n);
      const back = kvmGetXsave(ctx, kvmXsave2Size(ctx));
      expect(back.ok && back.value.image.xstateBv & XFEATURE_MASK.APX).toBe(0n);
    }
  });

  test("PKRU changes only when its XSTATE_BV bit is set", () => {
    const { ctx, vcpu } = ctxFor();
    vcpu.pkru = 0x55;
    expect(kvmSetXsave(ctx, imageWith(ctx, (_b, dv) => { dv.setBigUint64(512, 3n, true); dv.setUint32(2688, 0x77, true); }), 16).ok).toBe(true);
    expect(vcpu.pkru).toBe(0x55);
    expect(kvmSetXsave(ctx, imageWith(ctx, (_b, dv) => { dv.setBigUint64(512, 3n | XFEATURE_MASK.PKRU, true); dv.setUint32(2688, 0x77, true); }), 16).ok).toBe(true);
    expect(vcpu.pkru).toBe(0x77);
  });

  test("XSTATE_BV[9] (PKRU) comes from the fpstate header: clear on a fresh vCPU, set only by a KVM_SET_XSAVE that sets it", () => {
    const { ctx, vcpu } = ctxFor();
    expect(ctx.supportedXcr0 & XFEATURE_MASK.PKRU).not.toBe(0n); // the guest may use PKRU
    vcpu.pkru = 0x55;
    const bvOf = () => {
      const r = kvmGetXsave(ctx, kvmXsave2Size(ctx));
      if (!r.ok) throw new Error(r.reason);
      return { bv: r.value.image.xstateBv & ~XFEATURE_MASK.APX, pkru: new DataView(r.value.image.bytes.buffer).getUint32(2688, true) };
    };
    expect(bvOf()).toEqual({ bv: 0n, pkru: 0 });
    expect(kvmSetXsave(ctx, imageWith(ctx, (_b, dv) => { dv.setBigUint64(512, 3n | XFEATURE_MASK.PKRU, true); dv.setUint32(2688, 0x77, true); }), 16).ok).toBe(true);
    expect(bvOf()).toEqual({ bv: 3n | XFEATURE_MASK.PKRU, pkru: 0x77 });
    vcpu.pkru = 0x99; // KVM's value, not the buffer's
    expect(bvOf()).toEqual({ bv: 3n | XFEATURE_MASK.PKRU, pkru: 0x99 });
    expect(kvmSetXsave(ctx, imageWith(ctx, (_b, dv) => dv.setBigUint64(512, 3n, true)), 16).ok).toBe(true);
    expect(bvOf()).toEqual({ bv: 3n, pkru: 0 });
    expect(vcpu.pkru).toBe(0x99);
  });

  test("SET-then-GET round-trips the non-APX bytes userspace set", () => {
    const { ctx } = ctxFor();
    const img = imageWith(ctx, (b, dv) => { dv.setBigUint64(512, 7n, true); b[600] = 0xee; b[32] = 0x12; });
    expect(kvmSetXsave(ctx, img, 16).ok).toBe(true);
    const back = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    expect(back.ok && back.value.image.bytes[600]).toBe(0xee);
    expect(back.ok && back.value.image.bytes[32]).toBe(0x12);
  });

  test("protected vCPUs: every state ioctl is -EINVAL", () => {
    const { ctx } = ctxFor({ protectedState: true });
    for (const r of [kvmGetXsave(ctx), kvmSetXsave(ctx, new Uint8Array(4096), 16), kvmGetXcrs(ctx), kvmSetXcrs(ctx, { nrXcrs: 1, flags: 0, xcrs: [] }), kvmGetRegs(ctx)]) {
      expect(r.ok ? "ok" : r.errno).toBe("EINVAL");
    }
  });
});

describe("KVM_GET/SET_XCRS, KVM_GET/SET_REGS, sync_regs", () => {
  test("SET_XCRS: nr_xcrs > 16 or flags → EINVAL; __kvm_set_xcr failure → EINVAL; other indices ignored", () => {
    const { ctx, vcpu } = ctxFor();
    const e = (x: Parameters<typeof kvmSetXcrs>[1]) => { const r = kvmSetXcrs(ctx, x); return r.ok ? "ok" : r.errno; };
    expect(e({ nrXcrs: 17, flags: 0, xcrs: [] })).toBe("EINVAL");
    expect(e({ nrXcrs: 1, flags: 1, xcrs: [{ xcr: 0, value: 3n }] })).toBe("EINVAL");
    expect(e({ nrXcrs: 1, flags: 0, xcrs: [{ xcr: 0, value: 2n }] })).toBe("EINVAL"); // FP clear
    expect(e({ nrXcrs: 2, flags: 0, xcrs: [{ xcr: 1, value: 0xffn }, { xcr: 0, value: 7n }] })).toBe("ok");
    expect(vcpu.xcr0).toBe(7n);
    const g = kvmGetXcrs(ctx);
    expect(g.ok && g.value).toEqual({ nrXcrs: 1, flags: 0, xcrs: [{ xcr: 0, value: 7n }] });
  });

  test("SET_REGS: GPRs without dirty bits, RSP/RIP dirty, RFLAGS | 0x2; GET_REGS in struct order", () => {
    const { ctx, vcpu } = ctxFor();
    vcpu.regsDirty = 0n;
    const regs = Object.fromEntries(["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"].map((k, i) => [k, BigInt(i + 1)]));
    expect(kvmSetRegs(ctx, regs as never, 16).ok).toBe(true);
    expect(vcpu.regs.get(3)).toBe(2n); // rbx is kvm_regs field 1, enum 3
    expect(vcpu.regsDirty).toBe((1n << 4n) | (1n << BigInt(vcpu.layout.RIP)));
    expect(vcpu.rflags).toBe(18n | 2n);
    const g = kvmGetRegs(ctx);
    expect(g.ok && Object.keys(g.value)).toEqual(["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"]);
    expect(g.ok && g.value.rsp).toBe(7n);
  });

  test("sync_regs: bits outside REGS|SREGS|EVENTS → EINVAL; any bit for protected vCPUs", () => {
    expect(kvmCheckSyncRegs(7, 7, false).ok).toBe(true);
    expect(kvmCheckSyncRegs(8, 0, false).ok).toBe(false);
    expect(kvmCheckSyncRegs(0, 16, false).ok).toBe(false);
    expect(kvmCheckSyncRegs(1, 0, true).ok).toBe(false);
    expect(kvmCheckSyncRegs(0, 0, true).ok).toBe(true);
  });
});

describe("KVM_GET_XSAVE zero-fills gaps", () => {
  test("bytes userspace put in a gap or an absent component come back as zero", () => {
    const { ctx } = ctxFor();
    // 832..959 lies between YMM (576..831) and APX (960..): a gap on an APX part without MPX.
    const img = imageWith(ctx, (b, dv) => { dv.setBigUint64(512, 3n, true); b[900] = 0xaa; b[600] = 0xbb; b[100] = 0xcc; });
    expect(kvmSetXsave(ctx, img, 16).ok).toBe(true);
    const back = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    if (!back.ok) throw new Error(back.reason);
    expect(back.value.image.bytes[900]).toBe(0);
    expect(back.value.image.bytes[600]).toBe(0); // YMM absent from XSTATE_BV
    expect(back.value.image.bytes[100]).toBe(0xcc); // legacy area (SSE present) kept
  });
});

describe("KVM_GET_XSAVE legacy area as __copy_xstate_to_uabi_buf writes it", () => {
  test("bytes 464..471 = host user xfeatures (xstate_fx_sw_bytes); 416..463 and 472..511 zero, whatever userspace set", () => {
    const { ctx } = ctxFor();
    const fresh = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    if (!fresh.ok) throw new Error(fresh.reason);
    const dv0 = new DataView(fresh.value.image.bytes.buffer);
    expect(dv0.getBigUint64(464, true)).toBe(ctx.hostXcr0);
    expect(ctx.hostXcr0 & XFEATURE_MASK.APX).not.toBe(0n);
    const img = imageWith(ctx, (b, dv) => { dv.setBigUint64(512, 3n, true); b.fill(0x5a, 416, 512); });
    expect(kvmSetXsave(ctx, img, 16).ok).toBe(true);
    const back = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    if (!back.ok) throw new Error(back.reason);
    const b = back.value.image.bytes;
    expect(new DataView(b.buffer).getBigUint64(464, true)).toBe(ctx.hostXcr0);
    expect(b.subarray(416, 464).every((x) => x === 0)).toBe(true);
    expect(b.subarray(472, 512).every((x) => x === 0)).toBe(true);
  });

  test.each([
    ["FP|YMM (no SSE): from the fpstate", 0x5n, [0x1fa0, 0x7fff]],
    ["SSE: from the fpstate", 0x3n, [0x1fa0, 0x7fff]],
    ["YMM alone: from the fpstate", 0x4n, [0x1fa0, 0x7fff]],
    ["SSE alone: from the fpstate", 0x2n, [0x1fa0, 0x7fff]],
    ["FP only: from init_fpstate", 0x1n, [0x1f80, 0xffff]],
    ["nothing: from init_fpstate", 0x0n, [0x1f80, 0xffff]],
  ] as const)("MXCSR and MXCSR_MASK are the ones KVM_SET_XSAVE put there while SSE or YMM is in the header — %s", (_name, bv, want) => {
    const { ctx } = ctxFor();
    const img = imageWith(ctx, (_b, dv) => { dv.setBigUint64(512, bv, true); dv.setUint32(24, 0x1fa0, true); dv.setUint32(28, 0x7fff, true); });
    expect(kvmSetXsave(ctx, img, 16).ok).toBe(true);
    const back = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    if (!back.ok) throw new Error(back.reason);
    expect([back.value.image.mxcsr, back.value.image.mxcsrMask]).toEqual(want);
  });

  test("SET checks MXCSR reserved bits when FP, SSE or YMM is present, not otherwise", () => {
    const { ctx } = ctxFor();
    for (const [bv, ok] of [[0x4n, false], [0x1n, false], [0x2n, false], [0x0n, true]] as const) {
      const img = imageWith(ctx, (_b, dv) => { dv.setBigUint64(512, bv, true); dv.setUint32(24, 0x10000, true); });
      expect(kvmSetXsave(ctx, img, 16).ok, `XSTATE_BV 0x${bv.toString(16)}`).toBe(ok);
    }
  });
});

describe("a host without XSAVE (kvm_vcpu_ioctl_x86_get/set_xcrs, fpu_copy_guest_fpstate_to_uabi, fpu_copy_uabi_to_guest_fpstate)", () => {
  test("KVM_GET_XCRS reports no XCR (nr_xcrs 0); KVM_SET_XCRS is EINVAL even for XCR0 = FP", () => {
    const { ctx, vcpu } = ctxFor({ profile: "no-xsave" });
    expect(ctx.supportedXcr0).toBe(0n);
    const g = kvmGetXcrs(ctx);
    expect(g.ok && g.value).toEqual({ nrXcrs: 0, flags: 0, xcrs: [] });
    const r = kvmSetXcrs(ctx, { nrXcrs: 1, flags: 0, xcrs: [{ xcr: 0, value: 1n }] });
    expect(r.ok ? "ok" : r.errno).toBe("EINVAL");
    expect(vcpu.xcr0).toBe(1n);
  });

  test("a fresh vCPU's KVM_GET_XSAVE is its FXSAVE area (FCW 0x37f, MXCSR 0x1f80, MXCSR_MASK 0) with XSTATE_BV = FP|SSE", () => {
    const { ctx } = ctxFor({ profile: "no-xsave" });
    const r = kvmGetXsave(ctx);
    if (!r.ok) throw new Error(r.reason);
    const img = r.value.image;
    expect([img.xstateBv, img.fcw, img.mxcsr, img.mxcsrMask]).toEqual([3n, 0x37f, 0x1f80, 0]);
    expect(img.bytes.subarray(416, 512).every((b) => b === 0)).toBe(true); // no xstate_fx_sw_bytes
    expect(kvmXsave2Size(ctx)).toBe(4096);
  });

  test("KVM_SET_XSAVE takes the FXSAVE area as it is; EINVAL for XSTATE_BV beyond FP|SSE or MXCSR reserved bits (whatever XSTATE_BV says); XCOMP_BV and reserved header bytes unchecked", () => {
    const { ctx } = ctxFor({ profile: "no-xsave" });
    const e = (edit: (b: Uint8Array, dv: DataView) => void) => {
      const r = kvmSetXsave(ctx, imageWith(ctx, edit), 16);
      return r.ok ? "ok" : r.errno;
    };
    expect(e((_b, dv) => dv.setBigUint64(512, 4n, true))).toBe("EINVAL");
    expect(e((_b, dv) => { dv.setBigUint64(512, 0n, true); dv.setUint32(24, 0x10000, true); })).toBe("EINVAL");
    expect(e((b, dv) => { dv.setBigUint64(520, 0x8000000000000003n, true); b[530] = 1; })).toBe("ok");
    expect(e((b, dv) => { dv.setBigUint64(512, 0n, true); dv.setUint32(24, 0x9fc0, true); dv.setUint32(28, 0xffbf, true); b[32] = 0x12; b[160] = 0x34; b[470] = 0x5a; })).toBe("ok");
    const back = kvmGetXsave(ctx);
    if (!back.ok) throw new Error(back.reason);
    const img = back.value.image;
    expect([img.xstateBv, img.mxcsr, img.mxcsrMask, img.bytes[32], img.bytes[160], img.bytes[470]]).toEqual([3n, 0x9fc0, 0xffbf, 0x12, 0x34, 0x5a]);
    expect(img.bytes.subarray(520, 576).every((b) => b === 0)).toBe(true);
  });
});
