import { cpuidLookup, type CpuidEntry } from "@kvmx/core";
import type { KvmSegment, KvmSregs } from "../api.js";

/**
 * What KVM_SET_SREGS accepts (kvm_is_valid_sregs, kvm_is_valid_cr0/cr4, kvm_valid_efer,
 * kvm_apic_set_base) and how the vendor keeps segments (svm_set_segment/svm_get_segment): rules of
 * the KVM sources the lab runs. A reserved CR4 or EFER bit depends on the guest's CPUID, as in KVM.
 */
const CR0_PE = 1n;
const CR0_NW = 1n << 29n;
const CR0_CD = 1n << 30n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const EFER = { SCE: 1n, LME: 1n << 8n, LMA: 1n << 10n, NX: 1n << 11n, FFXSR: 1n << 14n } as const;

type Cpuid = readonly CpuidEntry[];
const has = (c: Cpuid, leaf: number, sub: number, reg: "eax" | "ebx" | "ecx" | "edx", bit: number) => ((cpuidLookup(c, leaf, sub)[reg] >>> bit) & 1) === 1;

/** CR4 bits KVM knows (CR4_RESERVED_BITS' complement) and the CPUID feature each one needs. */
const CR4_BITS: readonly { bit: number; needs?: [number, number, "eax" | "ebx" | "ecx" | "edx", number] }[] = [
  { bit: 0 }, { bit: 1 }, { bit: 2 }, { bit: 3 }, { bit: 4 }, { bit: 5 }, { bit: 6 }, { bit: 7 }, { bit: 8 }, { bit: 9 }, { bit: 10 },
  { bit: 11, needs: [7, 0, "ecx", 2] }, // UMIP
  { bit: 12, needs: [7, 0, "ecx", 16] }, // LA57
  { bit: 13, needs: [1, 0, "ecx", 5] }, // VMXE
  { bit: 16, needs: [7, 0, "ebx", 0] }, // FSGSBASE
  { bit: 17, needs: [1, 0, "ecx", 17] }, // PCIDE
  { bit: 18, needs: [1, 0, "ecx", 26] }, // OSXSAVE
  { bit: 20, needs: [7, 0, "ebx", 7] }, // SMEP
  { bit: 21, needs: [7, 0, "ebx", 20] }, // SMAP
  { bit: 22, needs: [7, 0, "ecx", 3] }, // PKE
  { bit: 28, needs: [7, 1, "eax", 26] }, // LAM_SUP
];

export function validCr4(cr4: bigint, guest: Cpuid): boolean {
  let allowed = 0n;
  for (const b of CR4_BITS) if (!b.needs || has(guest, ...b.needs)) allowed |= 1n << BigInt(b.bit);
  return (cr4 & ~allowed) === 0n;
}

export function validCr0(cr0: bigint): boolean {
  if (cr0 >> 32n !== 0n) return false;
  if ((cr0 & CR0_NW) !== 0n && (cr0 & CR0_CD) === 0n) return false;
  return !((cr0 & CR0_PG) !== 0n && (cr0 & CR0_PE) === 0n);
}

/**
 * efer_reserved_bits (SCE, LME/LMA, NX, and FFXSR on AMD hosts enabled) and __kvm_valid_efer's CPUID
 * gates. A CPUID table with basic leaves but no extended ones (kvmx's built-in profiles describe only
 * what XSAVE and APX need) says nothing about LM, NX or FFXSR: those gates are then not applied.
 */
export function validEfer(efer: bigint, guest: Cpuid, vendor: "amd" | "intel"): boolean {
  const known = EFER.SCE | EFER.LME | EFER.LMA | EFER.NX | (vendor === "amd" ? EFER.FFXSR : 0n);
  if ((efer & ~known) !== 0n) return false;
  if (guest.length > 0 && !guest.some((e) => e.function >= 0x8000_0000)) return true;
  if ((efer & EFER.FFXSR) !== 0n && !has(guest, 0x8000_0001, 0, "edx", 25)) return false;
  if ((efer & (EFER.LME | EFER.LMA)) !== 0n && !has(guest, 0x8000_0001, 0, "edx", 29)) return false;
  return !((efer & EFER.NX) !== 0n && !has(guest, 0x8000_0001, 0, "edx", 20));
}

/** cpuid_maxphyaddr: CPUID.0x80000008:EAX[7:0], 36 when the guest has no such leaf. */
export function maxPhyAddr(guest: Cpuid): number {
  const e = guest.find((x) => x.function === 0x8000_0008);
  return e ? e.eax & 0xff : 36;
}

const reservedGpaBits = (guest: Cpuid): bigint => ((1n << 64n) - 1n) & ~((1n << BigInt(maxPhyAddr(guest))) - 1n);

/** kvm_is_valid_sregs; `checkEfer`: from 6.12 (not in 6.1) KVM_SET_SREGS also refuses reserved EFER bits. */
export function validSregs(s: KvmSregs, guest: Cpuid, vendor: "amd" | "intel", checkEfer: boolean): boolean {
  if ((s.efer & EFER.LME) !== 0n && (s.cr0 & CR0_PG) !== 0n) {
    // 64-bit mode: PAE and LMA are required and CR3 must fit the guest's physical address width
    if ((s.cr4 & CR4_PAE) === 0n || (s.efer & EFER.LMA) === 0n) return false;
    if ((s.cr3 & reservedGpaBits(guest)) !== 0n) return false;
  } else if ((s.efer & EFER.LMA) !== 0n || s.cs.l !== 0) {
    return false;
  }
  return validCr4(s.cr4, guest) && validCr0(s.cr0) && (!checkEfer || validEfer(s.efer, guest, vendor));
}

/** kvm_apic_set_base as the host sets it: reserved bits (above MAXPHYADDR, 0x2ff, x2APIC without CPUID) and x2APIC without EN. */
export function validApicBase(value: bigint, guest: Cpuid): boolean {
  const x2apicEnable = 1n << 10n;
  const enable = 1n << 11n;
  const reserved = reservedGpaBits(guest) | 0x2ffn | (has(guest, 1, 0, "ecx", 21) ? 0n : x2apicEnable);
  if ((value & reserved) !== 0n) return false;
  return !((value & x2apicEnable) !== 0n && (value & enable) === 0n);
}

export type SegmentName = "cs" | "ds" | "es" | "fs" | "gs" | "ss" | "tr" | "ldt";

/**
 * svm_set_segment: the VMCB keeps base, limit, selector and the attribute bits (type, S, DPL, P
 * cleared for an unusable segment, AVL, L, D/B, G); no unusable or padding fields.
 */
export function svmStoreSegment(v: KvmSegment): KvmSegment {
  return { ...v, type: v.type & 0xf, s: v.s & 1, dpl: v.dpl & 3, present: v.present & 1 && !v.unusable ? 1 : 0, avl: v.avl & 1, l: v.l & 1, db: v.db & 1, g: v.g & 1, unusable: 0, padding: 0 };
}

/**
 * svm_get_segment: G synthesised from the limit, unusable = not present, TR's busy bit, the accessed
 * bit of usable data segments, SS.D/B cleared when unusable and SS.DPL = CPL.
 */
export function svmViewSegment(stored: KvmSegment, name: SegmentName, cpl: number): KvmSegment {
  const v: KvmSegment = { ...stored, g: stored.limit > 0xfffff ? 1 : 0, unusable: stored.present ? 0 : 1, padding: 0 };
  if (name === "tr") v.type |= 0x2;
  if ((name === "ds" || name === "es" || name === "fs" || name === "gs") && !v.unusable) v.type |= 0x1;
  if (name === "ss") {
    if (v.unusable) v.db = 0;
    v.dpl = cpl;
  }
  return v;
}

export const SEGMENT_NAMES: readonly SegmentName[] = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"];
