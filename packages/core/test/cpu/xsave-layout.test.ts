import { describe, expect, it } from "vitest";
import { InputError, cpuProfile, withOptions, xsaveLayout, XSAVE_COMPONENTS } from "../../src/index.js";

const pvm = cpuProfile("kvm-pvm");
const spr = cpuProfile("spr");
const dmr = cpuProfile("dmr");
const rows = (l: ReturnType<typeof xsaveLayout>) => l.components.map((c) => [c.name, c.offset, c.size]);

describe("XSAVE component table", () => {
  it("carries the standard offsets and sizes of docs/facts.md#xfeatures", () => {
    const t = Object.fromEntries(XSAVE_COMPONENTS.map((c) => [c.name, [c.standardOffset, c.size]]));
    expect(t).toMatchObject({
      YMM: [576, 256], APX: [960, 128], BNDREGS: [960, 64], BNDCSR: [1024, 64], OPMASK: [1088, 64],
      ZMM_Hi256: [1152, 512], Hi16_ZMM: [1664, 1024], PKRU: [2688, 8],
    });
    expect(XSAVE_COMPONENTS.filter((c) => c.supervisor).map((c) => c.enabledBy)).toEqual(["xss", "xss", "xss", "xss", "xss"]);
  });
});

describe("xsaveLayout", () => {
  it("standard layout of kvm-pvm's 0xe7 ends at 2688", () => {
    const l = xsaveLayout(pvm, 0xe7n, "standard");
    expect(rows(l)).toEqual([
      ["FP", 0, 160], ["SSE", 160, 256], ["YMM", 576, 256], ["OPMASK", 1088, 64], ["ZMM_Hi256", 1152, 512], ["Hi16_ZMM", 1664, 1024],
    ]);
    expect(l.size).toBe(2688);
  });
  it("compacted layout packs from 576 in ascending order", () => {
    const l = xsaveLayout(pvm, 0xe7n, "compacted");
    expect(rows(l).slice(2)).toEqual([["YMM", 576, 256], ["OPMASK", 832, 64], ["ZMM_Hi256", 896, 512], ["Hi16_ZMM", 1408, 1024]]);
    expect(l.size).toBe(2432);
  });
  it("spr: XCR0 0x602e7 — PKRU 8 bytes at 2688, AMX tile config 64 at 2752, tile data 8192 at 2816; 11008 bytes", () => {
    expect(spr.supportedXcr0).toBe(0x602e7n);
    expect(spr.hasApx).toBe(false);
    const l = xsaveLayout(spr, spr.supportedXcr0, "standard");
    expect(rows(l).slice(2)).toEqual([
      ["YMM", 576, 256], ["OPMASK", 1088, 64], ["ZMM_Hi256", 1152, 512], ["Hi16_ZMM", 1664, 1024],
      ["PKRU", 2688, 8], ["XTILE_CFG", 2752, 64], ["XTILE_DATA", 2816, 8192],
    ]);
    expect([l.size, spr.maxStandardSize]).toEqual([11008, 11008]);
    // Compacted: PKRU right after Hi16_ZMM, tile data 64-byte aligned (CPUID.(0xD,18).ECX[1]).
    expect(rows(xsaveLayout(spr, spr.supportedXcr0, "compacted")).slice(-3)).toEqual([["PKRU", 2432, 8], ["XTILE_CFG", 2440, 64], ["XTILE_DATA", 2560, 8192]]);
  });
  it("dmr: APX at 960 in the standard format, after XTILE_DATA (64-aligned) in the compacted one", () => {
    expect(xsaveLayout(dmr, dmr.supportedXcr0, "standard").components.find((c) => c.index === 19)).toMatchObject({ offset: 960 });
    const c = xsaveLayout(dmr, dmr.supportedXcr0, "compacted");
    expect(rows(c).slice(-3)).toEqual([["XTILE_CFG", 2440, 64], ["XTILE_DATA", 2560, 8192], ["APX", 10752, 128]]);
    expect(xsaveLayout(dmr, dmr.supportedXcr0, "standard").size).toBe(11008);
  });
  it("ASSUMPTIONS.apxCompactedAlign64 moves APX after PKRU from 584 to 640", () => {
    const f = 0x80203n;
    expect(xsaveLayout(dmr, f, "compacted").components.at(-1)).toMatchObject({ offset: 584 });
    const aligned = cpuProfile("dmr", withOptions({ apxCompactedAlign64: "yes" }));
    expect(xsaveLayout(aligned, f, "compacted").components.at(-1)).toMatchObject({ offset: 640 });
  });
  it("rejects components the profile lacks and MPX with APX", () => {
    expect(() => xsaveLayout(spr, 0x80003n, "standard")).toThrow(InputError);
    expect(() => xsaveLayout(pvm, 0x20003n, "standard")).toThrow(InputError);
    expect(() => xsaveLayout(dmr, 0x8001bn, "standard")).toThrow(/MPX and APX/);
  });
});
