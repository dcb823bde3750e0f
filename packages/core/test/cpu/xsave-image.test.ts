import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  CPU_PROFILE_NAMES,
  InputError,
  KVM_XSAVE_SIZE,
  cpuProfile,
  decodeXsave,
  initXsaveImage,
  kvmSetXsaveRejections,
  toCompacted,
  toStandard,
  trailingBytes,
  validXcr0Values,
  xsaveFromJson,
  xsaveLayout,
  xsaveToJson,
  type CpuProfile,
} from "../../src/index.js";
import { expectSameBytes, seededBytes } from "../../../../test/support/seeded-bytes.js";

/** A random image for `xcr0`: random bytes everywhere, then a header that makes it well-formed. */
function arbImage(profile: CpuProfile, xcr0: bigint, format: "standard" | "compacted", extra = 0) {
  const layout = xsaveLayout(profile, xcr0 | 3n, format);
  const size = layout.size + extra;
  return fc
    .tuple(seededBytes(size), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }))
    .map(([bytes, bv]) => {
      const dv = new DataView(bytes.buffer);
      dv.setBigUint64(512, bv & (xcr0 | 3n), true);
      dv.setBigUint64(520, format === "compacted" ? (1n << 63n) | xcr0 | 3n : 0n, true);
      return bytes;
    });
}

const cases = CPU_PROFILE_NAMES.flatMap((name) => {
  const p = cpuProfile(name);
  return validXcr0Values(p.supportedXcr0).map((x) => [name, x] as const);
});

describe("decode∘encode is the identity", () => {
  it(`covers every valid XCR0 of every profile (${cases.length} cases)`, () => {
    expect(cases.length).toBeGreaterThan(20);
  });
  for (const [name, xcr0] of cases) {
    const p = cpuProfile(name);
    test.prop([arbImage(p, xcr0, "standard", 64), arbImage(p, xcr0, "compacted")], { numRuns: 5 })(
      `${name} XCR0 0x${xcr0.toString(16)}: bytes and JSON round-trip, standard and compacted`,
      (std, cmp) => {
        for (const bytes of [std, cmp]) {
          const img = decodeXsave(bytes, { profile: p, xcr0 });
          expectSameBytes(img.encode(), bytes);
          const viaJson = xsaveFromJson(JSON.parse(JSON.stringify(xsaveToJson(img))));
          expectSameBytes(viaJson.encode(), bytes);
        }
      },
    );
  }
  test.prop([seededBytes(KVM_XSAVE_SIZE)])(
    "any 4096-byte buffer with a standard header decodes and re-encodes exactly (kvm-pvm)",
    (bytes) => {
      bytes.fill(0, 520, 528); // XCOMP_BV = 0: standard format
      const img = decodeXsave(bytes, { profile: cpuProfile("kvm-pvm") });
      expectSameBytes(img.encode(), bytes);
      expectSameBytes(xsaveFromJson(xsaveToJson(img)).encode(), bytes);
    },
  );
});

describe("standard ↔ compacted", () => {
  const dmr = cpuProfile("dmr");
  const dmrCases = validXcr0Values(dmr.supportedXcr0);
  test.prop([fc.constantFrom(...dmrCases).chain((x) => arbImage(dmr, x, "standard").map((b) => [x, b] as const))], { numRuns: 200 })(
    "conversion preserves every component's contents, the legacy area and XSTATE_BV",
    ([xcr0, bytes]) => {
      const std = decodeXsave(bytes, { profile: dmr, xcr0 });
      const cmp = toCompacted(std, dmr);
      expect(cmp.format).toBe("compacted");
      expect(cmp.xcompBv).toBe((1n << 63n) | xcr0 | 3n);
      const back = toStandard(decodeXsave(cmp.encode(), { profile: dmr }), dmr);
      for (const img of [cmp, back]) {
        expectSameBytes(img.bytes.subarray(0, 520), std.bytes.subarray(0, 520));
        for (const c of std.components()) expectSameBytes(img.component(c.index)?.bytes, c.bytes, c.name);
      }
      expect(back.xcompBv).toBe(0n);
      expect(back.apxRegisters()).toEqual(std.apxRegisters());
    },
  );
});

describe("typed parts", () => {
  const dmr = cpuProfile("dmr");
  it("decodes the legacy area, header and R16..R31", () => {
    const img = initXsaveImage(dmr, { size: 11008 });
    img.xstateBv = 0x80003n;
    img.fsw = 0x1234;
    img.fip = 0xffff_8000_0000_1000n;
    img.setApxRegister(0, 0x1616n);
    img.setApxRegister(15, 0x3131n);
    img.xmm(3).fill(0xab);
    const again = decodeXsave(img.encode(), { profile: dmr });
    expect([again.fcw, again.fsw, again.mxcsr, again.mxcsrMask, again.fip]).toEqual([0x37f, 0x1234, 0x1f80, 0xffff, 0xffff_8000_0000_1000n]);
    const regs = again.apxRegisters()!;
    expect([regs[0], regs[15], regs[7]]).toEqual([0x1616n, 0x3131n, 0n]);
    expect(again.component(19)).toMatchObject({ offset: 960, size: 128, present: true });
    expect(again.component(2)?.present).toBe(false);
    const json = xsaveToJson(again);
    expect(json.components.find((c) => c.index === 19)?.registers).toMatchObject({ r16: "0x1616", r31: "0x3131", r20: "0x0" });
    expect(json.legacy.xmm[3]).toBe("ab".repeat(16));
    expect(json.header).toMatchObject({ xstateBv: "0x80003", xcompBv: "0x0" });
  });
  it("R16..R31 sit at bytes 960..1087 as little-endian u64s (docs/facts.md#apx-xsave-component)", () => {
    const img = initXsaveImage(dmr);
    img.setApxRegister(1, 0x0102030405060708n);
    expect(Array.from(img.bytes.subarray(968, 976))).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
  });
  it("truncated and malformed images are InputErrors", () => {
    const pvm = cpuProfile("kvm-pvm");
    expect(() => decodeXsave(new Uint8Array(100), { profile: pvm })).toThrow(/truncated/);
    const small = initXsaveImage(dmr, { features: 0x3n }).encode(); // 576 bytes
    const bigger = new Uint8Array(1024);
    bigger.set(small);
    new DataView(bigger.buffer).setBigUint64(512, 1n << 18n, true); // XTILE_DATA present, far past 1024
    expect(() => decodeXsave(bigger, { profile: dmr })).toThrow(/truncated.*XTILE_DATA/);
    const comp = new Uint8Array(4096);
    new DataView(comp.buffer).setBigUint64(520, (1n << 63n) | (1n << 40n), true);
    expect(() => decodeXsave(comp, { profile: pvm })).toThrow(InputError);
    const tooSmallCompacted = new Uint8Array(600);
    new DataView(tooSmallCompacted.buffer).setBigUint64(520, (1n << 63n) | 0xe7n, true);
    expect(() => decodeXsave(tooSmallCompacted, { profile: pvm })).toThrow(/truncated/);
  });
  it("leaves out-of-buffer components that XSTATE_BV does not name (a 4096-byte image on dmr)", () => {
    const img = decodeXsave(initXsaveImage(dmr, { size: 4096, features: 0x802e7n }).encode(), { profile: dmr });
    expect(img.layout.components.map((c) => c.name)).toEqual(["FP", "SSE", "YMM", "OPMASK", "ZMM_Hi256", "Hi16_ZMM", "PKRU", "XTILE_CFG", "APX"]);
  });
  it("kvmSetXsaveRejections: every reason KVM_SET_XSAVE gives EINVAL, none for a clean image", () => {
    const pvm = cpuProfile("kvm-pvm");
    const clean = initXsaveImage(pvm, { size: 4096 });
    clean.xstateBv = 0xe7n;
    expect(kvmSetXsaveRejections(clean, 0xe7n)).toEqual([]);
    const bad = decodeXsave(clean.encode(), { profile: dmr, xcr0: 0x800e7n });
    bad.xstateBv = 0x800e7n;
    bad.xcompBv = 0x7n;
    bad.headerReserved[3] = 1;
    bad.mxcsr = 0x1_0000;
    expect(kvmSetXsaveRejections(bad, 0xe7n)).toEqual([
      "XSTATE_BV 0x800e7 has bits 0x80000 outside XCR0 0xe7",
      "XCOMP_BV 0x7 is not 0 in a standard-format image",
      "reserved header byte 531 is not 0",
      "MXCSR 0x10000 has reserved bits (mask 0xffff)",
    ]);
    expect(kvmSetXsaveRejections(toCompacted(clean, pvm), 0xe7n)).toEqual([expect.stringMatching(/compacted image; KVM_SET_XSAVE takes only the standard format/)]);
  });
  it("trailingBytes: non-zero bytes past the layout, none for KVM_GET_XSAVE's zero fill", () => {
    const pvm = cpuProfile("kvm-pvm");
    const img = initXsaveImage(pvm, { size: 4096 });
    expect(trailingBytes(img)).toBeUndefined();
    img.bytes[4000] = 0xaa;
    img.bytes[4095] = 0x0a;
    expect(trailingBytes(img)).toEqual({ start: 2688, end: 4096, nonZero: 2 });
  });
  it("xsaveFromJson rejects bad JSON with the path of the problem", () => {
    const json = xsaveToJson(initXsaveImage(dmr));
    expect(() => xsaveFromJson({ ...json, schemaVersion: 2 })).toThrow(/schemaVersion/);
    expect(() => xsaveFromJson({ ...json, header: { ...json.header, xstateBv: "zz" } })).toThrow(/header\.xstateBv/);
    expect(() => xsaveFromJson({ ...json, legacy: { ...json.legacy, st: ["00"] } })).toThrow(/legacy\.st/);
    const comps = json.components.map((c) => (c.index === 19 ? { ...c, registers: { ...c.registers, r17: "-1" } } : c));
    expect(() => xsaveFromJson({ ...json, components: comps })).toThrow(/registers\.r17/);
  });
});
