/**
 * The XCR0 validity rules. One ordered table serves both the architectural XSETBV checks (SDM XSETBV "#GP(0)"
 * list; used by the executor) and KVM's `__kvm_set_xcr` (docs/facts.md#xcr0-rules, in its order; XSETBV → #GP,
 * KVM_SET_XCRS → -EINVAL). The two differ only in the "supported" mask: the CPU's CPUID.(0xD,0) EDX:EAX for
 * hardware, guest-supported XCR0 | FP for KVM.
 */
import { InputError } from "../errors.js";
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

/** KVM's `__kvm_set_xcr` checks in the order of docs/facts.md#xcr0-rules: the allowed bits are guest-supported XCR0 | FP. */
export function kvmSetXcrCheck(index: number, value: bigint, guestSupportedXcr0: bigint): Xcr0RuleName | undefined {
  return firstFailedXcr0Rule(index, BigInt.asUintN(64, value), guestSupportedXcr0 | XFEATURE_MASK.FP);
}

/**
 * KVM_SUPPORTED_XCR0: the XCR0 bits KVM is willing to expose at all (docs/facts.md#supported-xcr0):
 * FP | SSE | YMM | MPX | AVX-512 | PKRU | XTILE | APX.
 */
export const KVM_SUPPORTED_XCR0 =
  XFEATURE_MASK.FP | XFEATURE_MASK.SSE | XFEATURE_MASK.YMM | XFEATURE_MASK_MPX | XFEATURE_MASK_AVX512 |
  XFEATURE_MASK.PKRU | XFEATURE_MASK_XTILE | XFEATURE_MASK.APX;

export type KvmVendor = "vmx" | "svm";

/**
 * kvm_caps.supported_xcr0: host XCR0 ∩ KVM_SUPPORTED_XCR0; SVM drops MPX and APX (APX "needs VMCB
 * support", docs/facts.md#svm-apx). `host` is a profile (its CPUID.(0xD,0) mask stands for host XCR0) or an XCR0.
 */
export function kvmSupportedXcr0(host: { supportedXcr0: bigint } | bigint, vendor: KvmVendor): bigint {
  const hostXcr0 = typeof host === "bigint" ? host : host.supportedXcr0;
  let mask = hostXcr0 & KVM_SUPPORTED_XCR0;
  if (vendor === "svm") mask &= ~(XFEATURE_MASK_MPX | XFEATURE_MASK.APX);
  return mask;
}

/**
 * vcpu->arch.guest_supported_xcr0: the guest's CPUID.(0xD,0) EDX:EAX ∩ KVM-supported XCR0. Takes the
 * guest's sub-leaf 0 result, or its whole CPUID table. A guest without leaf 0xD gets 0 (docs/facts.md#supported-xcr0).
 */
export function guestSupportedXcr0(
  guestLeafD: { eax: number; edx: number } | readonly { function: number; index: number; eax: number; edx: number }[],
  kvmSupported: bigint,
): bigint {
  const d0 = Array.isArray(guestLeafD)
    ? (guestLeafD as readonly { function: number; index: number; eax: number; edx: number }[]).find((x) => x.function === 0xd && x.index === 0)
    : (guestLeafD as { eax: number; edx: number });
  if (!d0) return 0n;
  return ((BigInt(d0.edx >>> 0) << 32n) | BigInt(d0.eax >>> 0)) & kvmSupported;
}

/**
 * Every XCR0 value made of `supported` bits that passes the architectural rules, ascending. For
 * exhaustive tests and tables; `supported` has at most ~20 user bits, so the subsets are enumerable.
 */
export function validXcr0Values(supported: bigint): bigint[] {
  const bits: bigint[] = [];
  for (let i = 0n; i < 64n; i++) if ((supported >> i) & 1n) bits.push(1n << i);
  if (bits.length > 20) throw new InputError(`validXcr0Values: ${bits.length} supported bits are too many to enumerate`);
  const out: bigint[] = [];
  for (let m = 0; m < 1 << bits.length; m++) {
    let v = 0n;
    for (let k = 0; k < bits.length; k++) if (m & (1 << k)) v |= bits[k]!;
    if (firstFailedXcr0Rule(0, v, supported) === undefined) out.push(v);
  }
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
