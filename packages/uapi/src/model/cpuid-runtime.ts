import { cpuidLookup, type CpuProfile, type CpuidEntry } from "@kvmx/core";

/**
 * kvm_update_cpuid_runtime: the CPUID fields KVM recomputes from vCPU state whenever that state
 * changes (KVM_SET_CPUID2, CR4 writes, XCR0 writes, the APIC base), so the guest's CPUID and
 * KVM_GET_CPUID2 both show them: CPUID.1:ECX.OSXSAVE = CR4.OSXSAVE (only on an XSAVE host),
 * CPUID.1:EDX.APIC = IA32_APIC_BASE.EN, CPUID.7:ECX.OSPKE = CR4.PKE (only on a PKU host),
 * CPUID.0xD.0:EBX = xstate_required_size(XCR0, standard), CPUID.0xD.1:EBX the compacted size when
 * the table has XSAVES or XSAVEC (kvm_update_cpuid_runtime).
 */
export interface CpuidRuntimeState {
  readonly cr4: bigint;
  readonly apicBase: bigint;
  readonly xcr0: bigint;
  /** The host CPU: its XSAVE component sizes and offsets, and whether it has XSAVE and PKU. */
  readonly profile: CpuProfile;
}

const CR4_OSXSAVE = 1n << 18n;
const CR4_PKE = 1n << 22n;
const APIC_BASE_ENABLE = 1n << 11n;
const XSAVE_HEADER_END = 576;

type MutableEntry = { -readonly [K in keyof CpuidEntry]: CpuidEntry[K] };

const bit = (v: number, n: number, on: boolean): number => (on ? (v | (1 << n)) >>> 0 : (v & ~(1 << n)) >>> 0);

/** xstate_required_size: the XSAVE area size for the user features of `xcr0`, standard or compacted. */
export function xstateRequiredSize(xcr0: bigint, compacted: boolean, profile: CpuProfile): number {
  let size = XSAVE_HEADER_END;
  for (const c of profile.components) {
    if (c.index < 2 || ((xcr0 >> BigInt(c.index)) & 1n) === 0n) continue;
    const offset = compacted ? (c.align64 ? Math.ceil(size / 64) * 64 : size) : (c.standardOffset ?? size);
    size = Math.max(size, offset + c.size);
  }
  return size;
}

/** The table as KVM holds it at this moment: `entries` with the runtime fields recomputed. */
export function runtimeCpuid(entries: readonly CpuidEntry[], s: CpuidRuntimeState): CpuidEntry[] {
  const host = (leaf: number, sub: number) => cpuidLookup(s.profile.cpuid, leaf, sub);
  const hostXsave = ((host(1, 0).ecx >>> 26) & 1) === 1;
  const hostPku = ((host(7, 0).ecx >>> 3) & 1) === 1;
  // cpuid_entry2_find: the first entry of the leaf (with the index when it is significant)
  const first = (fn: number, index: number | undefined) =>
    entries.findIndex((e) => e.function === fn && (index === undefined || (e.flags & 1) === 0 || e.index === index));
  const out: MutableEntry[] = entries.map((e) => ({ ...e }));
  const l1 = first(1, undefined);
  if (l1 >= 0) {
    const e = out[l1]!;
    if (hostXsave) e.ecx = bit(e.ecx, 27, (s.cr4 & CR4_OSXSAVE) !== 0n);
    e.edx = bit(e.edx, 9, (s.apicBase & APIC_BASE_ENABLE) !== 0n);
  }
  const l7 = first(7, 0);
  if (l7 >= 0 && hostPku) out[l7]!.ecx = bit(out[l7]!.ecx, 4, (s.cr4 & CR4_PKE) !== 0n);
  const d0 = first(0xd, 0);
  if (d0 >= 0) out[d0]!.ebx = xstateRequiredSize(s.xcr0, false, s.profile);
  const d1 = first(0xd, 1);
  // XSAVEC is CPUID.(0xD,1):EAX[1], XSAVES EAX[3]
  if (d1 >= 0 && (out[d1]!.eax & 0b1010) !== 0) out[d1]!.ebx = xstateRequiredSize(s.xcr0, true, s.profile);
  return out;
}
