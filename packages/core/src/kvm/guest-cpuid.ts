/**
 * The guest CPUID the Machine gives its vCPUs (what a VMM would KVM_SET_CPUID2): the host's leaves,
 * leaf 0xD.0 narrowed to KVM-supported XCR0, APX_F only when the scenario's guest has APX.
 * Guest-supported XCR0 (docs/facts.md#supported-xcr0) is read back from this table's leaf 0xD.0.
 */
import { CPUID_FEATURE, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, type CpuidEntry } from "../cpu/cpuid.js";
import { XFEATURE, XFEATURE_MASK } from "../cpu/xfeatures.js";

const setBit = (v: number, bit: number, on: boolean): number => (on ? (v | (1 << bit)) >>> 0 : (v & ~(1 << bit)) >>> 0);

export function guestCpuidEntries(host: readonly CpuidEntry[], supportedXcr0: bigint, guestApx: boolean): CpuidEntry[] {
  const xcr0Mask = guestApx ? supportedXcr0 : supportedXcr0 & ~XFEATURE_MASK.APX;
  const out: CpuidEntry[] = [];
  const apx = CPUID_FEATURE.APX_F;
  let sawD0 = false;
  for (const e of host) {
    if (e.function === 0xd && e.index === 0) {
      sawD0 = true;
      out.push({ ...e, eax: Number(xcr0Mask & 0xffff_ffffn) >>> 0, edx: Number(xcr0Mask >> 32n) >>> 0 });
    } else if (e.function === apx.leaf && e.index === apx.subleaf) {
      out.push({ ...e, edx: setBit(e.edx, apx.bit, guestApx) });
    } else if (e.function === 0xd && e.index === XFEATURE.APX && !guestApx) {
      continue;
    } else {
      out.push(e);
    }
  }
  if (!sawD0) {
    out.push({
      function: 0xd, index: 0, flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
      eax: Number(xcr0Mask & 0xffff_ffffn) >>> 0, ebx: 0, ecx: 0, edx: Number(xcr0Mask >> 32n) >>> 0,
    });
  }
  return out;
}
