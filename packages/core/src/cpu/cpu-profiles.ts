/**
 * CPU profiles as data: ONE table of built-in CPUID dumps (shaped like kvm_cpuid_entry2) and one
 * function, profileFromCpuid, that turns any dump — built-in, or a real KVM_GET_SUPPORTED_CPUID —
 * into a profile: vendor, APX, supported XCR0/XSS (leaf 0xD) and component sizes/offsets.
 */
import { InputError } from "../errors.js";
import { DEFAULT_MODEL_OPTIONS, type ModelOptions } from "../model-options.js";
import {
  CPUID_FEATURE,
  KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
  cpuidLookup,
  type CpuidEntry,
  type CpuidResult,
} from "./cpuid.js";
import { xsaveComponent, XSAVE_EXTENDED_OFFSET } from "./xsave-components.js";
import { XFEATURE, XFEATURE_MASK, XFEATURE_MASK_MPX, xfeatureMask } from "./xfeatures.js";

export type CpuVendor = "intel" | "amd" | "other";

/** A state component as this profile's CPUID leaf 0xD describes it. */
export interface ProfileComponent {
  readonly index: number;
  readonly name: string;
  readonly size: number;
  /** Standard-format offset; undefined for supervisor components. */
  readonly standardOffset: number | undefined;
  readonly align64: boolean;
  readonly supervisor: boolean;
}

export interface CpuProfile {
  readonly name: string;
  readonly description: string;
  readonly vendor: CpuVendor;
  /** CPUID.(7,1):EDX[21] APX_F and XCR0[19] supported. */
  readonly hasApx: boolean;
  /** CPUID.(0xD,0) EDX:EAX. */
  readonly supportedXcr0: bigint;
  /** CPUID.(0xD,1) EDX:ECX. */
  readonly supportedXss: bigint;
  /** CPUID.(0xD,0).ECX: standard-format size with every supported XCR0 component. */
  readonly maxStandardSize: number;
  /** Components 0..63 the profile enumerates (FP and SSE always), ascending. */
  readonly components: readonly ProfileComponent[];
  readonly cpuid: readonly CpuidEntry[];
}

export function profileComponent(p: CpuProfile, index: number): ProfileComponent | undefined {
  return p.components.find((c) => c.index === index);
}

export const lookupCpuid = (p: CpuProfile) => (leaf: number, subleaf: number): CpuidResult => cpuidLookup(p.cpuid, leaf, subleaf);

export function profileHas(p: CpuProfile, feature: keyof typeof CPUID_FEATURE): boolean {
  const f = CPUID_FEATURE[feature];
  return ((cpuidLookup(p.cpuid, f.leaf, f.subleaf)[f.reg] >>> f.bit) & 1) === 1;
}

const VENDORS: Record<string, CpuVendor> = {
  GenuineIntel: "intel",
  AuthenticAMD: "amd",
  HygonGenuine: "amd",
};

function vendorString(r: CpuidResult): string {
  const bytes: number[] = [];
  for (const w of [r.ebx, r.edx, r.ecx]) for (let k = 0; k < 4; k++) bytes.push((w >>> (8 * k)) & 0xff);
  return String.fromCharCode(...bytes);
}

/**
 * Builds a profile from a CPUID dump (e.g. KVM_GET_SUPPORTED_CPUID output). Throws InputError when
 * leaf 0xD is missing, a supported component has no sub-leaf, or MPX and APX are both enumerated
 * (Linux disables XSAVE then; docs/facts.md#apx-mpx-exclusion).
 */
export function profileFromCpuid(
  entries: readonly CpuidEntry[],
  meta: { name?: string; description?: string } = {},
): CpuProfile {
  const name = meta.name ?? "custom";
  const at = (leaf: number, sub: number) => cpuidLookup(entries, leaf, sub);
  if (!entries.some((e) => e.function === 0xd)) throw new InputError(`CPUID dump "${name}" has no leaf 0xD`);
  const d0 = at(0xd, 0);
  const d1 = at(0xd, 1);
  const supportedXcr0 = (BigInt(d0.edx >>> 0) << 32n) | BigInt(d0.eax >>> 0);
  const supportedXss = (BigInt(d1.edx >>> 0) << 32n) | BigInt(d1.ecx >>> 0);
  if ((supportedXcr0 & XFEATURE_MASK_MPX) !== 0n && (supportedXcr0 & XFEATURE_MASK.APX) !== 0n) {
    throw new InputError(`CPUID dump "${name}" enumerates both MPX and APX, which never coexist (Linux disables XSAVE)`);
  }
  const components: ProfileComponent[] = [
    { index: 0, name: "FP", size: 160, standardOffset: 0, align64: false, supervisor: false },
    { index: 1, name: "SSE", size: 256, standardOffset: 160, align64: false, supervisor: false },
  ];
  for (let i = 2; i < 63; i++) {
    const m = xfeatureMask(i);
    if (((supportedXcr0 | supportedXss) & m) === 0n) continue;
    const sub = at(0xd, i);
    if (sub.eax === 0) throw new InputError(`CPUID dump "${name}": component ${i} is supported but CPUID.(0xD,${i}).EAX (size) is 0`);
    const supervisor = (sub.ecx & 1) === 1;
    const known = xsaveComponent(i);
    components.push({
      index: i,
      name: known?.name ?? `component${i}`,
      size: sub.eax >>> 0,
      standardOffset: supervisor ? undefined : sub.ebx >>> 0,
      align64: ((sub.ecx >>> 1) & 1) === 1,
      supervisor,
    });
  }
  const vendor = VENDORS[vendorString(at(0, 0))] ?? "other";
  const apxF = ((at(7, 1).edx >>> 21) & 1) === 1;
  return {
    name,
    description: meta.description ?? `profile built from a CPUID dump (${entries.length} entries)`,
    vendor,
    hasApx: apxF && (supportedXcr0 & XFEATURE_MASK.APX) !== 0n,
    supportedXcr0,
    supportedXss,
    maxStandardSize: d0.ecx >>> 0,
    components,
    cpuid: entries,
  };
}

// ---------------------------------------------------------------------------------------------
// The built-in dumps.

const S = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
const e = (fn: number, index: number, eax: number, ebx: number, ecx: number, edx: number, flags = S): CpuidEntry => ({
  function: fn, index, flags, eax: eax >>> 0, ebx: ebx >>> 0, ecx: ecx >>> 0, edx: edx >>> 0,
});
const words = (s: string): [number, number, number] => {
  const w = (o: number) => s.charCodeAt(o) | (s.charCodeAt(o + 1) << 8) | (s.charCodeAt(o + 2) << 16) | (s.charCodeAt(o + 3) << 24);
  return [w(0), w(4), w(8)];
};
const leaf0 = (max: number, vendor: string): CpuidEntry => {
  const [b, d, c] = words(vendor);
  return e(0, 0, max, b, c, d, 0);
};

/** Leaf 0xD sub-leaves 0..n for the given user components (sizes/offsets/alignment from the component table). */
function leafD(xcr0: bigint, xsaveFeatures: number, opts: ModelOptions): CpuidEntry[] {
  let maxEnd = XSAVE_EXTENDED_OFFSET;
  const subs: CpuidEntry[] = [];
  for (let i = 2; i < 32; i++) {
    if ((xcr0 & xfeatureMask(i)) === 0n) continue;
    const spec = xsaveComponent(i);
    if (!spec || spec.standardOffset === undefined) continue;
    let align = spec.align64;
    let offset = spec.standardOffset;
    if (i === XFEATURE.APX) {
      align = opts.apxCompactedAlign64 === "yes";
      offset = Number(opts.apxStandardOffset);
    }
    maxEnd = Math.max(maxEnd, offset + spec.size);
    subs.push(e(0xd, i, spec.size, offset, align ? 2 : 0, 0));
  }
  const lo = Number(xcr0 & 0xffff_ffffn);
  const hi = Number(xcr0 >> 32n);
  // KVM reports EBX = ECX = the size for all supported features (xstate_required_size).
  return [e(0xd, 0, lo, maxEnd, maxEnd, hi), e(0xd, 1, xsaveFeatures, 0, 0, 0), ...subs];
}

// CPUID.1:ECX bits: SSE3 0, SSSE3 9, FMA 12, SSE4.1 19, SSE4.2 20, x2APIC 21, XSAVE 26, AVX 28; EDX: FPU 0, SSE 25, SSE2 26.
const L1_ECX = (1 << 0) | (1 << 9) | (1 << 12) | (1 << 19) | (1 << 20) | (1 << 21) | (1 << 26) | (1 << 28);
const L1_EDX = (1 << 0) | (1 << 25) | (1 << 26);
// CPUID.(7,0):EBX AVX2 5, AVX512F 16, AVX512DQ 17, AVX512BW 30, AVX512VL 31; ECX PKU 3.
const L7_EBX_AVX512 = (1 << 5) | (1 << 16) | (1 << 17) | (1 << 30) | (1 << 31);

export interface BuiltinProfileSpec {
  readonly description: string;
  readonly cpuid: (opts: ModelOptions) => CpuidEntry[];
}

// CPUID.(7,0):EDX AMX_BF16 22, AMX_TILE 24, AMX_INT8 25.
const L7_EDX_AMX = (1 << 22) | (1 << 24) | (1 << 25);
/** Leaves 0x1D/0x1E: AMX palette 1 — 8 tiles of 16 rows × 64 bytes (8192 bytes), TMUL K=16, N=64. */
const AMX_TILE_LEAVES = (): CpuidEntry[] => [
  e(0x1d, 0, 1, 0, 0, 0),
  e(0x1d, 1, 8192 | (1024 << 16), 64 | (8 << 16), 16, 0),
  e(0x1e, 0, 0, 16 | (64 << 8), 0, 0),
];

/**
 * THE table of built-in profiles, each named for what it is. XSAVE sizes and standard offsets come
 * from the component table (the architectural values every Intel part reports, docs/facts.md#xsave-uapi).
 */
export const CPU_PROFILES = {
  spr: {
    description:
      "Sapphire Rapids as KVM reports it to a VMM that requested AMX: XCR0 0x602e7 (x87, SSE, AVX, AVX-512, PKRU, " +
      "AMX tile config 64 bytes at 2752 and tile data 8192 bytes at 2816), XSAVE 11008 bytes, no MPX, no APX",
    cpuid: (o) => [
      leaf0(0x20, "GenuineIntel"),
      e(1, 0, 0x806f8, 0, L1_ECX, L1_EDX, 0),
      e(7, 0, 1, L7_EBX_AVX512, 1 << 3, L7_EDX_AMX),
      e(7, 1, (1 << 4) | (1 << 5), 0, 0, 0),
      ...leafD(0x602e7n, 0b11111, o),
      ...AMX_TILE_LEAVES(),
    ],
  },
  "kvm-pvm": {
    description:
      "the KVM of kvmx's development and CI machines (a kvm_pvm host on Sapphire Rapids-class CPUs, docs/facts.md#kvm-pvm-host): " +
      "XCR0 0xe7 (x87, SSE, AVX, AVX-512), XSAVE 2688 bytes, no MPX, PKRU, AMX or APX",
    cpuid: (o) => [
      leaf0(0x20, "GenuineIntel"),
      e(1, 0, 0x806f8, 0, L1_ECX, L1_EDX, 0),
      e(7, 0, 1, L7_EBX_AVX512, 0, 0),
      e(7, 1, 0, 0, 0, 0),
      ...leafD(0xe7n, 0b1111, o),
    ],
  },
  dmr: {
    description:
      "an APX part (Diamond Rapids class): APX_F, leaf 0x29, MSR_IMM, AVX-512, AMX, PKRU, no MPX; APX component 128 bytes at 960",
    cpuid: (o) => [
      leaf0(0x29, "GenuineIntel"),
      e(1, 0, 0x00d00f10, 0, L1_ECX, L1_EDX, 0),
      e(7, 0, 1, L7_EBX_AVX512, 1 << 3, 1 << 24),
      e(7, 1, 0, 0, 1 << 5, 1 << 21),
      ...leafD(0xe02e7n | XFEATURE_MASK.APX, 0b1111, o),
      e(0x29, 0, 0, 1, 0, 0),
    ],
  },
  zen: {
    description: "AMD Zen 4 class: AVX-512 and PKRU, no MPX, no AMX, no APX",
    cpuid: (o) => [
      leaf0(0x10, "AuthenticAMD"),
      e(1, 0, 0x00a10f11, 0, L1_ECX, L1_EDX, 0),
      e(7, 0, 1, L7_EBX_AVX512, 1 << 3, 0),
      e(7, 1, 0, 0, 0, 0),
      ...leafD(0x2e7n, 0b1111, o),
    ],
  },
} as const satisfies Record<string, BuiltinProfileSpec>;

export type CpuProfileName = keyof typeof CPU_PROFILES;
export const CPU_PROFILE_NAMES = Object.keys(CPU_PROFILES) as CpuProfileName[];

export const isCpuProfileName = (s: string): s is CpuProfileName => Object.hasOwn(CPU_PROFILES, s);

/** A built-in profile; InputError for an unknown name. Options decide the [?] parts of leaf 0xD (APX alignment). */
export function cpuProfile(name: string, options: ModelOptions = DEFAULT_MODEL_OPTIONS): CpuProfile {
  if (!isCpuProfileName(name)) {
    throw new InputError(`unknown CPU profile "${name}" (known: ${CPU_PROFILE_NAMES.join(", ")})`);
  }
  const spec: BuiltinProfileSpec = CPU_PROFILES[name];
  return profileFromCpuid(spec.cpuid(options), { name, description: spec.description });
}

/**
 * Reads a CPUID dump from parsed JSON: an array of kvm_cpuid_entry2-shaped objects, or an object with
 * a `cpuid` array (the shape of `kvmx probe --json`). Fields are numbers or "0x…" strings.
 */
export function cpuidDumpFromJson(json: unknown, where = "CPUID dump"): CpuidEntry[] {
  const list = Array.isArray(json)
    ? json
    : typeof json === "object" && json !== null && Array.isArray((json as { cpuid?: unknown }).cpuid)
      ? (json as { cpuid: unknown[] }).cpuid
      : undefined;
  if (!list) throw new InputError(`${where}: expected an array of CPUID entries or an object with a "cpuid" array`);
  const u32 = (v: unknown, path: string): number => {
    const n = typeof v === "string" && /^0x[0-9a-f]+$/i.test(v) ? Number(BigInt(v)) : v;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
      throw new InputError(`${path}: expected a u32, got ${JSON.stringify(v)}`);
    }
    return n;
  };
  return list.map((raw, k) => {
    const p = `${where}[${k}]`;
    if (typeof raw !== "object" || raw === null) throw new InputError(`${p}: expected an object`);
    const e = raw as Record<string, unknown>;
    return {
      function: u32(e.function, `${p}.function`),
      index: u32(e.index ?? 0, `${p}.index`),
      flags: u32(e.flags ?? 0, `${p}.flags`),
      eax: u32(e.eax, `${p}.eax`),
      ebx: u32(e.ebx, `${p}.ebx`),
      ecx: u32(e.ecx, `${p}.ecx`),
      edx: u32(e.edx, `${p}.edx`),
    };
  });
}
