import { describe, expect, it } from "vitest";
import {
  CPU_PROFILE_NAMES,
  InputError,
  cpuProfile,
  profileComponent,
  profileFromCpuid,
  profileHas,
  withOptions,
  type CpuidEntry,
} from "../../src/index.js";

describe("built-in CPU profiles", () => {
  it("names spr, kvm-pvm, dmr and zen", () => {
    expect(CPU_PROFILE_NAMES).toEqual(["spr", "kvm-pvm", "dmr", "zen"]);
  });
  it("spr is Sapphire Rapids with AMX: XCR0 0x602e7, PKRU, tile config/data, AMX CPUID bits and tile leaves", () => {
    const p = cpuProfile("spr");
    expect([p.vendor, p.hasApx, p.supportedXcr0, p.maxStandardSize]).toEqual(["intel", false, 0x602e7n, 11008]);
    expect(p.components.map((c) => [c.index, c.size, c.standardOffset, c.align64])).toEqual([
      [0, 160, 0, false], [1, 256, 160, false], [2, 256, 576, false], [5, 64, 1088, false], [6, 512, 1152, false],
      [7, 1024, 1664, false], [9, 8, 2688, false], [17, 64, 2752, false], [18, 8192, 2816, true],
    ]);
    const leaf = (fn: number, index: number) => p.cpuid.find((e) => e.function === fn && e.index === index)!;
    expect((leaf(7, 0).edx >>> 24) & 1).toBe(1); // AMX_TILE
    expect((leaf(7, 0).ecx >>> 3) & 1).toBe(1); // PKU
    expect(leaf(0xd, 1).eax & 0x1f).toBe(0x1f); // XSAVEOPT, XSAVEC, XGETBV1, XSAVES, XFD
    expect([leaf(0x1d, 1).eax & 0xffff, leaf(0x1d, 1).eax >>> 16, leaf(0x1d, 1).ecx]).toEqual([8192, 1024, 16]);
  });
  it("kvm-pvm matches the KVM of kvmx's machines: XCR0 0xe7, AVX-512 offsets, no APX/MPX/PKRU/AMX", () => {
    const p = cpuProfile("kvm-pvm");
    expect(p.vendor).toBe("intel");
    expect(p.hasApx).toBe(false);
    expect(p.supportedXcr0).toBe(0xe7n);
    expect(p.maxStandardSize).toBe(2688);
    expect(p.components.map((c) => [c.index, c.size, c.standardOffset])).toEqual([
      [0, 160, 0], [1, 256, 160], [2, 256, 576], [5, 64, 1088], [6, 512, 1152], [7, 1024, 1664],
    ]);
  });
  it("dmr is an APX part: CPUID.(7,1).EDX[21], leaf 0x29 EBX[0], component 19 = 128 bytes at 960", () => {
    const p = cpuProfile("dmr");
    expect(p.hasApx).toBe(true);
    expect(profileHas(p, "APX_F")).toBe(true);
    expect(profileHas(p, "APX_NCI_NDD_NF")).toBe(true);
    expect(profileHas(p, "MSR_IMM")).toBe(true);
    expect(p.supportedXcr0).toBe(0xe02e7n);
    expect(profileComponent(p, 19)).toMatchObject({ size: 128, standardOffset: 960, align64: false });
    expect(profileComponent(p, 3)).toBeUndefined();
    expect(profileComponent(p, 18)).toMatchObject({ size: 8192, standardOffset: 2816, align64: true });
    expect(p.maxStandardSize).toBe(11008);
  });
  it("dmr's APX alignment follows ASSUMPTIONS.apxCompactedAlign64", () => {
    expect(profileComponent(cpuProfile("dmr", withOptions({ apxCompactedAlign64: "yes" })), 19)?.align64).toBe(true);
  });
  it("zen is AMD without APX or MPX", () => {
    const p = cpuProfile("zen");
    expect([p.vendor, p.hasApx, p.supportedXcr0]).toEqual(["amd", false, 0x2e7n]);
  });
  it("an unknown profile is an InputError naming the known ones", () => {
    expect(() => cpuProfile("skylake")).toThrow(/unknown CPU profile "skylake".*spr, kvm-pvm, dmr, zen/);
    expect(() => cpuProfile("skylake")).toThrow(InputError);
  });
});

describe("profileFromCpuid", () => {
  const base: CpuidEntry[] = [
    { function: 0, index: 0, flags: 0, eax: 0xd, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69 },
    { function: 0xd, index: 0, flags: 1, eax: 0x7, ebx: 832, ecx: 832, edx: 0 },
    { function: 0xd, index: 1, flags: 1, eax: 0x1, ebx: 0, ecx: 0, edx: 0 },
    { function: 0xd, index: 2, flags: 1, eax: 256, ebx: 576, ecx: 0, edx: 0 },
  ];
  it("reads vendor, XCR0 and components from a KVM_GET_SUPPORTED_CPUID-shaped dump", () => {
    const p = profileFromCpuid(base, { name: "avx-only" });
    expect([p.name, p.vendor, p.supportedXcr0, p.hasApx]).toEqual(["avx-only", "intel", 0x7n, false]);
    expect(profileComponent(p, 2)).toMatchObject({ size: 256, standardOffset: 576 });
  });
  it("rejects a dump without leaf 0xD, a supported component without a size, and MPX with APX", () => {
    expect(() => profileFromCpuid(base.slice(0, 1))).toThrow(InputError);
    expect(() => profileFromCpuid(base.slice(0, 3))).toThrow(/component 2 is supported/);
    const both = [...base.slice(0, 1), { ...base[1]!, eax: 0x8001b }, base[2]!];
    expect(() => profileFromCpuid(both)).toThrow(/MPX and APX/);
  });
  it("round-trips the built-in profiles through their own CPUID", () => {
    for (const n of CPU_PROFILE_NAMES) {
      const p = cpuProfile(n);
      const q = profileFromCpuid(p.cpuid, { name: n, description: p.description });
      expect(q).toEqual(p);
    }
  });
});

describe("cpuidDumpFromJson", () => {
  it("reads `kvmx probe --json` output and plain arrays, numbers or 0x strings", async () => {
    const { cpuidDumpFromJson } = await import("../../src/index.js");
    const pvm = cpuProfile("kvm-pvm");
    const probe = JSON.parse(JSON.stringify({ schemaVersion: 1, cpuid: pvm.cpuid }));
    expect(profileFromCpuid(cpuidDumpFromJson(probe)).supportedXcr0).toBe(0xe7n);
    const hexed = pvm.cpuid.map((e) => ({ ...e, eax: `0x${e.eax.toString(16)}` }));
    expect(cpuidDumpFromJson(hexed)).toEqual(pvm.cpuid);
    expect(() => cpuidDumpFromJson({ nope: 1 })).toThrow(InputError);
    expect(() => cpuidDumpFromJson([{ function: 1, eax: -1, ebx: 0, ecx: 0, edx: 0 }])).toThrow(/\[0\]\.eax/);
  });
});
