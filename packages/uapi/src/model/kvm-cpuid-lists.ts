import type { KvmCpuidEntry2 } from "../structs/flexible.js";
import { KVM_X86_GRP_SEV, KVM_X86_XCOMP_GUEST_SUPP } from "../caps.js";
import { kernelSeries } from "./kernel-release.js";
import type { ResolvedModelConfig } from "./model-config.js";

/**
 * KVM_GET_EMULATED_CPUID as kvm_dev_ioctl_get_cpuid builds it: for each base function (0,
 * 0x80000000, the KVM signature; the Centaur range only on Centaur hosts) and then every leaf up to
 * the last entry's EAX, __do_cpuid_func_emulated first refuses with E2BIG when the array is full —
 * even for a leaf it adds nothing for — and adds leaf 0 (EAX 7), leaf 1 (MOVBE) and leaf 7 (RDPID
 * when KVM supports RDTSCP). So the three entries need room for four.
 */
export function emulatedCpuid(supported: readonly KvmCpuidEntry2[], maxnent: number): { ok: true; entries: KvmCpuidEntry2[] } | { ok: false } {
  const rdtscp = ((supported.find((e) => e.function === 0x8000_0001)?.edx ?? 0) >>> 27) & 1;
  const entries: KvmCpuidEntry2[] = [];
  const entry = (fn: number, flags: number, eax: number, ecx: number): KvmCpuidEntry2 => ({ function: fn, index: 0, flags, eax, ebx: 0, ecx, edx: 0, padding: [0, 0, 0] });
  const one = (fn: number): boolean => {
    if (entries.length >= maxnent) return false;
    if (fn === 0) entries.push(entry(0, 0, 7, 0));
    else if (fn === 1) entries.push(entry(1, 0, 0, 1 << 22)); // MOVBE
    else if (fn === 7) entries.push(entry(7, 1, 0, rdtscp ? 1 << 22 : 0)); // RDPID
    return true;
  };
  for (const base of [0, 0x8000_0000, 0x4000_0000]) {
    if (!one(base)) return { ok: false };
    const limit = entries.at(-1)?.eax ?? 0;
    for (let fn = base + 1; fn <= limit; fn++) if (!one(fn)) return { ok: false };
  }
  return { ok: true, entries };
}

/**
 * KVM_GET_DEVICE_ATTR / KVM_HAS_DEVICE_ATTR on the system fd: group 0 has KVM_X86_XCOMP_GUEST_SUPP
 * (kvm_caps.supported_xcr0); from 6.10 other groups go to the vendor, and SVM answers group
 * KVM_X86_GRP_SEV attribute 0 (KVM_X86_SEV_VMSA_FEATURES: 0 without SEV-ES). Undefined = ENXIO.
 */
export function deviceAttr(cfg: ResolvedModelConfig, group: number, attr: bigint): bigint | undefined {
  if (group === 0) return attr === KVM_X86_XCOMP_GUEST_SUPP ? cfg.supportedXcr0 : undefined;
  const vendorAttrs = kernelSeries(cfg.kernel.release).series !== "6.1";
  if (vendorAttrs && cfg.vendor === "amd" && group === KVM_X86_GRP_SEV && attr === 0n) return 0n;
  return undefined;
}
