import { fc, test } from "@fast-check/vitest";
import { validXcr0Values, XFEATURE_MASK, type Design } from "@kvmx/core";
import { vmxBackend } from "@kvmx/vmx";
import { describe, expect, it } from "vitest";
import { KvmError } from "../src/errors.js";
import { ModelKvm } from "../src/model/model-kvm.js";
import type { ModelVcpu } from "../src/model/model-vcpu.js";
import { decodeStruct, encodeStruct } from "../src/structs/codec.js";
import { decodeKvmXcrs, encodeKvmXcrs } from "../src/structs/kvm-xcrs.js";
import { decodeKvmXsave, encodeKvmXsave } from "../src/structs/flexible.js";
import { KVM_SYNC_X86_REGS } from "../src/sync-regs.js";
import { loadGuestProgram, movProgram } from "../src/guest/guest-program.js";
import { arbitraryStruct } from "./struct-arbitrary.js";

/**
 * The simulated vCPU's state ioctls against docs/facts.md#xsave-uapi and docs/facts.md#kvm-pvm-host, on the model alone: these run here,
 * without /dev/kvm. The rules themselves are core's (uapi-ops.ts); these tests go through the
 * uAPI layer (structs, errno) on top of them.
 */
const pvm = new ModelKvm({ backend: vmxBackend, cpu: "kvm-pvm" });

function vcpuOf(kvm: ModelKvm, opts: { cpuid?: boolean } = {}): ModelVcpu {
  const v = kvm.createVm().createVcpu(0);
  if (opts.cpuid ?? true) v.setCpuid2(kvm.getSupportedCpuid());
  return v;
}

function errnoOf(f: () => void): string {
  try {
    f();
    return "ok";
  } catch (err) {
    if (err instanceof KvmError) return err.errnoName;
    throw err;
  }
}

const VALID_SPR = new Set(validXcr0Values(0xe7n));
/** XCR0 candidates: every subset of the low byte, APX/MPX/AMX bits, and arbitrary u64s. */
const xcr0Arb = fc.oneof(
  fc.integer({ min: 0, max: 0xff }).map(BigInt),
  fc.constantFrom(0x80007n, 0x800e7n, 0x60007n, 0x18n, 0x1e7n, 0x2e7n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);

describe("KVM_SET_XCRS / KVM_GET_XCRS (kvm-pvm)", () => {
  it("accepts 0x1, 0x3, 0x7, 0xe7 and rejects the usual invalid values with EINVAL (docs/facts.md#kvm-pvm-host)", () => {
    const v = vcpuOf(pvm);
    for (const x of [0x1n, 0x3n, 0x7n, 0xe7n]) {
      v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: x }] });
      expect(v.getXcrs()).toEqual({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: x }] });
    }
    for (const x of [0x0n, 0x2n, 0x5n, 0xfn, 0x27n, 0x80007n]) {
      expect(errnoOf(() => v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: x }] }))).toBe("EINVAL");
    }
    expect(v.getXcrs().xcrs[0]!.value).toBe(0xe7n);
  });

  test.prop([xcr0Arb], { numRuns: 300 })("accepts exactly the valid subsets of 0xe7; a rejection leaves XCR0 unchanged", (x) => {
    const v = vcpuOf(pvm);
    v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: 0x3n }] });
    const r = errnoOf(() => v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: x }] }));
    expect(r).toBe(VALID_SPR.has(x) ? "ok" : "EINVAL");
    expect(v.getXcrs().xcrs[0]!.value).toBe(VALID_SPR.has(x) ? x : 0x3n);
  });

  test.prop([fc.integer({ min: 0, max: 0xff }).map(BigInt)])("before KVM_SET_CPUID2 only XCR0 = FP is accepted", (x) => {
    const v = vcpuOf(pvm, { cpuid: false });
    expect(errnoOf(() => v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: x }] }))).toBe(x === 1n ? "ok" : "EINVAL");
  });

  test.prop([fc.integer({ min: 1, max: 0xffff_ffff })])("flags other than 0 are EINVAL", (flags) => {
    expect(errnoOf(() => vcpuOf(pvm).setXcrs({ flags, xcrs: [{ xcr: 0, reserved: 0, value: 0x7n }] }))).toBe("EINVAL");
  });

  test.prop([fc.constantFrom(...VALID_SPR), fc.integer({ min: 1, max: 15 })])(
    "through the binary layer: encode kvm_xcrs → model ioctl → GET → encode/decode round-trips",
    (x, index) => {
      const v = vcpuOf(pvm);
      // entries for other XCR indices are ignored; the xcr == 0 entry is applied
      const wire = encodeKvmXcrs({ flags: 0, xcrs: [{ xcr: index, reserved: 0, value: 0x5n }, { xcr: 0, reserved: 0, value: x }] });
      v.setXcrs(decodeKvmXcrs(wire));
      const back = decodeKvmXcrs(encodeKvmXcrs(v.getXcrs()));
      expect(back).toEqual({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: x }] });
    },
  );
});

/** A 4096-byte image with the given header fields. */
function image(o: { xstateBv: bigint; xcompBv?: bigint; reserved?: number; mxcsr?: number; fill?: number }): Uint8Array {
  const b = new Uint8Array(4096);
  if (o.fill !== undefined) b.fill(o.fill, 576, 4096);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, 0x37f, true);
  dv.setUint32(24, o.mxcsr ?? 0x1f80, true);
  dv.setBigUint64(512, o.xstateBv, true);
  dv.setBigUint64(520, o.xcompBv ?? 0n, true);
  b[530] = o.reserved ?? 0;
  return b;
}

describe("KVM_SET_XSAVE / KVM_GET_XSAVE(2) (kvm-pvm)", () => {
  const SUPPORTED = 0xe7n;
  test.prop(
    [
      fc.oneof(fc.integer({ min: 0, max: 0xfff }).map(BigInt), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
      fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: (1n << 64n) - 1n })),
      fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })),
      fc.oneof(fc.constant(0x1f80), fc.integer({ min: 0, max: 0xffff_ffff })),
    ],
    { numRuns: 300 },
  )("rejects exactly: XSTATE_BV ⊄ supported, XCOMP_BV ≠ 0, reserved header bytes, MXCSR reserved bits (docs/facts.md#kvm-set-xsave)", (xstateBv, xcompBv, reserved, mxcsr) => {
    const v = vcpuOf(pvm);
    const bad =
      (xstateBv & ~(SUPPORTED | 3n)) !== 0n ||
      xcompBv !== 0n ||
      reserved !== 0 ||
      ((xstateBv & 7n) !== 0n && (mxcsr & ~0xffff) !== 0);
    expect(errnoOf(() => v.setXsave(image({ xstateBv, xcompBv, reserved, mxcsr })))).toBe(bad ? "EINVAL" : "ok");
  });

  test.prop([fc.subarray([1n, 2n, 4n, 0xe0n]), fc.integer({ min: 1, max: 255 })])(
    "GET after SET: XSTATE_BV and present components round-trip; absent ones read as zeros",
    (parts, fill) => {
      const xstateBv = parts.reduce((a, b) => a | b, 1n);
      const v = vcpuOf(pvm);
      v.setXsave(image({ xstateBv, fill }));
      const got = v.getXsave();
      const dv = new DataView(got.buffer);
      expect(dv.getBigUint64(512, true)).toBe(xstateBv);
      expect(dv.getBigUint64(520, true)).toBe(0n);
      // YMM 576/256, AVX-512 1088..2687 (docs/facts.md#xfeatures standard offsets)
      const ymm = got.subarray(576, 832);
      expect(ymm.every((b) => b === ((xstateBv & 4n) !== 0n ? fill : 0))).toBe(true);
      const avx512 = got.subarray(1088, 2688);
      expect(avx512.every((b) => b === ((xstateBv & 0xe0n) !== 0n ? fill : 0))).toBe(true);
    },
  );

  test.prop([fc.integer({ min: 1, max: 255 })])("gaps — bytes no kvm-pvm component covers (MPX's 960..1087) — read back as zeros (docs/facts.md#kvm-get-xsave)", (fill) => {
    const v = vcpuOf(pvm);
    v.setXsave(image({ xstateBv: 0xe7n, fill }));
    expect(v.getXsave().subarray(960, 1088).every((b) => b === 0)).toBe(true);
  });

  it("a fresh vCPU reports the init legacy fields (FCW 0x37f, MXCSR 0x1f80) with XSTATE_BV 0", () => {
    const got = vcpuOf(pvm).getXsave();
    const dv = new DataView(got.buffer);
    expect(dv.getUint16(0, true)).toBe(0x37f);
    expect(dv.getUint32(24, true)).toBe(0x1f80);
    expect(dv.getBigUint64(512, true)).toBe(0n);
  });

  it("KVM_CAP_XSAVE2 is 4096 on kvm-pvm and the size of the standard layout with AMX on dmr", () => {
    expect(pvm.createVm().checkExtension("XSAVE2")).toBe(4096);
    expect(vcpuOf(pvm).getXsave2().length).toBe(4096);
    const dmr = new ModelKvm({ backend: vmxBackend, cpu: "dmr" });
    const size = dmr.createVm().checkExtension("XSAVE2");
    // XTILE_DATA is the last component: 2816 + 8192 bytes (SDM table 13-1 standard offsets)
    expect(size).toBe(2816 + 8192);
    expect(vcpuOf(dmr).getXsave2().length).toBe(size);
    // KVM_GET_XSAVE cannot hold the uABI size there: EINVAL
    expect(errnoOf(() => vcpuOf(dmr).getXsave())).toBe("EINVAL");
  });
});

describe("PKRU and the kvm_xsave binary layer", () => {
  it("PKRU comes from KVM's value: SET with XSTATE_BV[9] changes it and puts the bit in the header, SET without it leaves the value and clears the bit (zen, docs/facts.md#kvm-get-xsave, docs/facts.md#kvm-set-xsave)", () => {
    const zen = new ModelKvm({ backend: vmxBackend, cpu: "zen" });
    const v = vcpuOf(zen);
    const PKRU = 2688;
    const img = image({ xstateBv: 0x203n });
    new DataView(img.buffer).setUint32(PKRU, 0x5555_0004, true);
    v.setXsave(img);
    const pkruOf = (b: Uint8Array) => new DataView(b.buffer).getUint32(PKRU, true);
    expect(pkruOf(v.getXsave())).toBe(0x5555_0004);
    expect(new DataView(v.getXsave().buffer).getBigUint64(512, true) & 0x200n).toBe(0x200n);
    v.setXsave(image({ xstateBv: 0x3n }));
    expect(new DataView(v.getXsave().buffer).getBigUint64(512, true) & 0x200n).toBe(0n);
    expect(pkruOf(v.getXsave())).toBe(0); // absent from the header: zero-filled
    expect(v.vcpu.pkru).toBe(0x5555_0004);
  });

  test.prop([fc.subarray([2n, 0xe0n]), fc.uint8Array({ minLength: 256, maxLength: 256 })], { numRuns: 50 })(
    "encodeKvmXsave → KVM_SET_XSAVE → KVM_GET_XSAVE2 → decodeKvmXsave keeps the region's header and YMM bytes",
    (parts, ymm) => {
      const xstateBv = parts.reduce((a, b) => a | b, 0x7n);
      const region = image({ xstateBv });
      region.set(ymm, 576);
      const v = vcpuOf(pvm);
      v.setXsave(encodeKvmXsave({ region, extra: new Uint8Array(0) }));
      const back = decodeKvmXsave(v.getXsave2(), pvm.xsave2Size);
      expect(back.extra.length).toBe(0);
      expect(new DataView(back.region.buffer).getBigUint64(512, true)).toBe(xstateBv);
      expect(back.region.subarray(576, 832)).toEqual(ymm);
    },
  );
});

describe("APX component 19 through KVM_GET/SET_XSAVE2 (dmr)", () => {
  const APX = 960;
  function apxImage(size: number, xstateBv: bigint, values: bigint[]): Uint8Array {
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    dv.setUint16(0, 0x37f, true);
    dv.setUint32(24, 0x1f80, true);
    dv.setBigUint64(512, xstateBv, true);
    values.forEach((x, k) => dv.setBigUint64(APX + 8 * k, x, true));
    return b;
  }
  const readApx = (b: Uint8Array) => Array.from({ length: 16 }, (_, k) => new DataView(b.buffer).getBigUint64(APX + 8 * k, true));

  // KVM (series v4) copies component 19 into regs[16..31] only when XSTATE_BV[19]=1; the
  // setXsaveApxAbsent assumption is about what the guest should then see (the checker's expectation),
  // not about what KVM does — so both choices give the same images here.
  for (const choice of ["leave-unchanged", "init-zeros"] as const) {
    test.prop([fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 16, maxLength: 16 })], { numRuns: 40 })(
      `setXsaveApxAbsent=${choice}: SET with XSTATE_BV[19]=1 round-trips; then SET with it clear leaves R16–R31 in regs[]`,
      (vals) => {
        const kvm = new ModelKvm({ backend: vmxBackend, cpu: "dmr", options: { setXsaveApxAbsent: choice } });
        const v = vcpuOf(kvm);
        v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: 0x800e7n }] });
        v.setXsave(apxImage(kvm.xsave2Size, 0x80003n, vals));
        const got = v.getXsave2();
        expect(readApx(got)).toEqual(vals);
        expect(new DataView(got.buffer).getBigUint64(512, true) & XFEATURE_MASK.APX).toBe(XFEATURE_MASK.APX);
        v.setXsave(apxImage(kvm.xsave2Size, 0x3n, []));
        expect(readApx(v.getXsave2())).toEqual(vals);
      },
    );
  }

  it("SET_XSAVE with XSTATE_BV[19] on a CPU without APX (kvm-pvm) is EINVAL", () => {
    expect(errnoOf(() => vcpuOf(pvm).setXsave(apxImage(4096, 0x80003n, [1n])))).toBe("EINVAL");
  });
});

describe("KVM_GET/SET_REGS and sync regs", () => {
  test.prop([arbitraryStruct("kvm_regs")])("SET then GET round-trips, RFLAGS with bit 1 forced", (regs) => {
    const v = vcpuOf(pvm);
    v.setRegs(regs);
    expect(v.getRegs()).toEqual({ ...regs, rflags: regs.rflags | 2n });
    // and through the binary struct
    expect(decodeStruct("kvm_regs", encodeStruct("kvm_regs", v.getRegs()))).toEqual(v.getRegs());
  });

  test.prop([fc.bigInt({ min: 0n, max: 0xffn }), fc.bigInt({ min: 0n, max: 0xffn })])(
    "KVM_RUN fails with EINVAL exactly when valid or dirty has a bit outside REGS|SREGS|EVENTS",
    (valid, dirty) => {
      const kvm = pvm;
      const vm = kvm.createVm();
      const v = vm.createVcpu(0);
      v.setCpuid2(kvm.getSupportedCpuid());
      loadGuestProgram(vm, v, movProgram(new Map([[3, 0x77n]])));
      v.syncRegs.valid = valid;
      v.syncRegs.dirty = dirty;
      // dirty classes load s.* before entry: give them the current state so the run itself is unchanged
      if (dirty & KVM_SYNC_X86_REGS) v.syncRegs.write({ regs: v.getRegs() });
      if (dirty & 2n) v.syncRegs.write({ sregs: v.getSregs() });
      if (dirty & 4n) v.syncRegs.write({ events: v.getVcpuEvents() });
      const bad = (valid & ~7n) !== 0n || (dirty & ~7n) !== 0n;
      expect(errnoOf(() => v.run())).toBe(bad ? "EINVAL" : "ok");
      vm.close();
    },
  );

  it("a KVM_RUN that fails with EINVAL still stores the valid classes it knows (store_regs on the way out)", () => {
    const vm = pvm.createVm();
    const v = vm.createVcpu(0);
    v.setCpuid2(pvm.getSupportedCpuid());
    v.setRegs({ ...v.getRegs(), rbx: 0x4242n });
    v.syncRegs.valid = KVM_SYNC_X86_REGS | 0x8n;
    expect(errnoOf(() => v.run())).toBe("EINVAL");
    expect(v.syncRegs.read().regs.rbx).toBe(0x4242n);
    // dirty SREGS with CR4.OSXSAVE on a vCPU without CPUID XSAVE: REGS were loaded (bit cleared), SREGS failed (bit kept)
    const noXsave = vm.createVcpu(1);
    noXsave.syncRegs.write({ regs: { ...noXsave.getRegs(), rbx: 0x99n }, sregs: { ...noXsave.getSregs(), cr4: 1n << 18n } });
    noXsave.syncRegs.dirty = KVM_SYNC_X86_REGS | 2n;
    expect(errnoOf(() => noXsave.run())).toBe("EINVAL");
    expect(noXsave.syncRegs.dirty).toBe(2n);
    expect(noXsave.getRegs().rbx).toBe(0x99n);
    vm.close();
  });

  it("dirty REGS are loaded before entry and valid REGS stored at the exit", () => {
    const vm = pvm.createVm();
    const v = vm.createVcpu(0);
    v.setCpuid2(pvm.getSupportedCpuid());
    loadGuestProgram(vm, v, movProgram(new Map([[3, 0x77n]])));
    v.syncRegs.write({ regs: { ...v.getRegs(), r12: 0xabcn } });
    v.syncRegs.dirty = KVM_SYNC_X86_REGS;
    v.syncRegs.valid = KVM_SYNC_X86_REGS;
    const exit = v.run();
    expect(exit.kind).toBe("io");
    expect(v.syncRegs.dirty).toBe(0n);
    const s = v.syncRegs.read().regs;
    expect(s.r12).toBe(0xabcn);
    expect(s.rbx).toBe(0x77n);
    expect(s).toEqual(v.getRegs());
  });
});

describe("protected state and CR4.OSXSAVE", () => {
  it("a design whose EGPRs are hardware-owned has protected state: every state ioctl is EINVAL", () => {
    const hw: Design = { name: "protected-test", description: "hardware-owned guest state", source: "test", egprHome: "hardware", actions: [] };
    const kvm = new ModelKvm({ backend: vmxBackend, cpu: "kvm-pvm", design: hw });
    const v = vcpuOf(kvm);
    expect(errnoOf(() => v.getRegs())).toBe("EINVAL");
    expect(errnoOf(() => v.getXsave())).toBe("EINVAL");
    expect(errnoOf(() => v.getXcrs())).toBe("EINVAL");
    expect(errnoOf(() => v.getSregs())).toBe("EINVAL");
    v.syncRegs.valid = 1n;
    expect(errnoOf(() => v.run())).toBe("EINVAL");
  });

  it("KVM_SET_SREGS with CR4.OSXSAVE is EINVAL while guest CPUID lacks XSAVE (upstream kvm_is_valid_cr4)", () => {
    const v = vcpuOf(pvm, { cpuid: false });
    const s = v.getSregs();
    expect(errnoOf(() => v.setSregs({ ...s, cr4: s.cr4 | (1n << 18n) }))).toBe("EINVAL");
    v.setCpuid2(pvm.getSupportedCpuid());
    expect(errnoOf(() => v.setSregs({ ...s, cr4: s.cr4 | (1n << 18n) }))).toBe("ok");
  });
});
