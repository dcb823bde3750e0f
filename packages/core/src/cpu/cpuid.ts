/**
 * CPUID results as KVM carries them: entries shaped like `struct kvm_cpuid_entry2`
 * (KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2), and the lookup a CPU performs on them.
 */

/** One CPUID leaf/sub-leaf, shaped like kvm_cpuid_entry2 (`function` is the leaf, `index` the sub-leaf). */
export interface CpuidEntry {
  readonly function: number;
  readonly index: number;
  /** KVM_CPUID_FLAG_SIGNIFCANT_INDEX (1): the sub-leaf matters for this leaf. */
  readonly flags: number;
  readonly eax: number;
  readonly ebx: number;
  readonly ecx: number;
  readonly edx: number;
}

export interface CpuidResult {
  readonly eax: number;
  readonly ebx: number;
  readonly ecx: number;
  readonly edx: number;
}

/** kvm_cpuid_entry2.flags bit: the entry is valid only for its exact sub-leaf. (kernel spelling: SIGNIFCANT) */
export const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;

const ZERO: CpuidResult = { eax: 0, ebx: 0, ecx: 0, edx: 0 };

/**
 * The entry CPUID(leaf, subleaf) returns, or all zeros when the table has none (KVM's
 * kvm_find_cpuid_entry2 semantics; the "highest basic leaf" fallback of real CPUs is not modelled).
 */
export function cpuidLookup(entries: readonly CpuidEntry[], leaf: number, subleaf: number): CpuidResult {
  for (const e of entries) {
    if (e.function !== leaf >>> 0) continue;
    if ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) !== 0 && e.index !== subleaf >>> 0) continue;
    return e;
  }
  return ZERO;
}

/**
 * cpuidLookup over a fixed table, remembered per (leaf, subleaf): the executor asks for the same few
 * leaves (0xD for XSAVE offsets and XCR0 masks, 7 for features) on every XSAVE and XSETBV.
 */
export function cpuidLookupMemo(entries: readonly CpuidEntry[]): (leaf: number, subleaf: number) => CpuidResult {
  const memo = new Map<number, CpuidResult>();
  return (leaf, subleaf) => {
    const k = (leaf >>> 0) * 4096 + (subleaf & 0xfff);
    let r = memo.get(k);
    if (r === undefined || subleaf >>> 0 > 0xfff) {
      r = cpuidLookup(entries, leaf, subleaf);
      if (subleaf >>> 0 <= 0xfff) memo.set(k, r);
    }
    return r;
  };
}

/** CPUID feature bits the model consults, by the SDM's name. */
export const CPUID_FEATURE = {
  /** CPUID.1:ECX[26] XSAVE */
  XSAVE: { leaf: 1, subleaf: 0, reg: "ecx", bit: 26 },
  /** CPUID.1:ECX[27] OSXSAVE (reflects CR4.OSXSAVE) */
  OSXSAVE: { leaf: 1, subleaf: 0, reg: "ecx", bit: 27 },
  /** CPUID.(7,1):EDX[21] APX_F (docs/facts.md#apx-enumeration) */
  APX_F: { leaf: 7, subleaf: 1, reg: "edx", bit: 21 },
  /** CPUID.(7,1):ECX[5] MSR_IMM: RDMSR/WRMSRNS immediate forms */
  MSR_IMM: { leaf: 7, subleaf: 1, reg: "ecx", bit: 5 },
  /** CPUID.(0xD,1):EAX[1] XSAVEC (compacted format) */
  XSAVEC: { leaf: 0xd, subleaf: 1, reg: "eax", bit: 1 },
  /** CPUID.(0xD,1):EAX[2] XGETBV with ECX=1 (XINUSE) */
  XGETBV_ECX1: { leaf: 0xd, subleaf: 1, reg: "eax", bit: 2 },
  /** CPUID.(0x29,0):EBX[0] APX_NCI_NDD_NF (docs/facts.md#apx-enumeration) */
  APX_NCI_NDD_NF: { leaf: 0x29, subleaf: 0, reg: "ebx", bit: 0 },
} as const satisfies Record<string, { leaf: number; subleaf: number; reg: keyof CpuidResult; bit: number }>;
export type CpuidFeatureName = keyof typeof CPUID_FEATURE;

export function hasCpuidFeature(cpuid: (leaf: number, subleaf: number) => CpuidResult, name: CpuidFeatureName): boolean {
  const f = CPUID_FEATURE[name];
  return ((cpuid(f.leaf, f.subleaf)[f.reg] >>> f.bit) & 1) === 1;
}

/** EDX:EAX of CPUID.(0xD,0): the XCR0 bits the processor supports. */
export function supportedXcr0FromCpuid(cpuid: (leaf: number, subleaf: number) => CpuidResult): bigint {
  const r = cpuid(0xd, 0);
  return (BigInt(r.edx >>> 0) << 32n) | BigInt(r.eax >>> 0);
}
