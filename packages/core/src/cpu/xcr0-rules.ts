/**
 * The XCR0 validity rules. One ordered table serves both the architectural XSETBV checks (SDM XSETBV
 * "#GP(0)" list; used by the executor) and KVM's `__kvm_set_xcr` (FACTS.md §6 order; XSETBV → #GP,
 * KVM_SET_XCRS → -EINVAL). The two differ only in the "supported" mask: the CPU's CPUID.(0xD,0)
 * EDX:EAX for hardware, guest-supported XCR0 | FP for KVM.
 */
import {
  XFEATURE_MASK,
  XFEATURE_MASK_AVX512,
  XFEATURE_MASK_MPX,
  XFEATURE_MASK_XTILE,
} from "./xfeatures.js";

export const XCR0_RULES = [
  { name: "index-not-zero", description: "ECX must name XCR0 (index 0)" },
  { name: "fp-clear", description: "XCR0[0] (x87) must be 1" },
  { name: "ymm-without-sse", description: "XCR0[2] (YMM) requires XCR0[1] (SSE)" },
  { name: "unsupported-bit", description: "a bit outside the supported XCR0 mask is set" },
  { name: "mpx-half", description: "BNDREGS and BNDCSR must be set together" },
  { name: "avx512-incomplete", description: "OPMASK, ZMM_Hi256 and Hi16_ZMM must be set together, and with YMM" },
  { name: "amx-half", description: "XTILE_CFG and XTILE_DATA must be set together" },
  { name: "mpx-with-apx", description: "BNDREGS and APX cannot be enabled together (they share XSAVE bytes 960..1087)" },
] as const;
export type Xcr0RuleName = (typeof XCR0_RULES)[number]["name"];

export const describeXcr0Rule = (name: Xcr0RuleName): string =>
  XCR0_RULES.find((r) => r.name === name)?.description ?? name;

/**
 * The first rule `value` breaks as a write of XCR`index`, or undefined when the write is valid.
 * `supported` is the mask of bits that may be set (rule "unsupported-bit").
 */
export function firstFailedXcr0Rule(index: number, value: bigint, supported: bigint): Xcr0RuleName | undefined {
  if (index !== 0) return "index-not-zero";
  if ((value & XFEATURE_MASK.FP) === 0n) return "fp-clear";
  if ((value & XFEATURE_MASK.YMM) !== 0n && (value & XFEATURE_MASK.SSE) === 0n) return "ymm-without-sse";
  if ((value & ~supported) !== 0n) return "unsupported-bit";
  const mpx = value & XFEATURE_MASK_MPX;
  if (mpx !== 0n && mpx !== XFEATURE_MASK_MPX) return "mpx-half";
  const avx512 = value & XFEATURE_MASK_AVX512;
  if (avx512 !== 0n && ((value & XFEATURE_MASK.YMM) === 0n || avx512 !== XFEATURE_MASK_AVX512)) return "avx512-incomplete";
  const xtile = value & XFEATURE_MASK_XTILE;
  if (xtile !== 0n && xtile !== XFEATURE_MASK_XTILE) return "amx-half";
  if ((value & XFEATURE_MASK.BNDREGS) !== 0n && (value & XFEATURE_MASK.APX) !== 0n) return "mpx-with-apx";
  return undefined;
}

/** The architectural XSETBV value checks (CPL and CR4.OSXSAVE are the executor's, they come first). */
export function archXsetbvCheck(index: number, value: bigint, cpuSupportedXcr0: bigint): Xcr0RuleName | undefined {
  return firstFailedXcr0Rule(index, BigInt.asUintN(64, value), cpuSupportedXcr0);
}

/** KVM's `__kvm_set_xcr` checks, FACTS.md §6 order: the allowed bits are guest-supported XCR0 | FP. */
export function kvmSetXcrCheck(index: number, value: bigint, guestSupportedXcr0: bigint): Xcr0RuleName | undefined {
  return firstFailedXcr0Rule(index, BigInt.asUintN(64, value), guestSupportedXcr0 | XFEATURE_MASK.FP);
}
