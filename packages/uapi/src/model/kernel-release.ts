import { KVM_CAP, type KvmCapName } from "../caps.js";
import type { KernelParams } from "./model-config.js";

/**
 * What KVM_CHECK_EXTENSION answers depends on the kernel version (kvm_vm_ioctl_check_extension in
 * x86.c and kvm_main.c) and its configuration. The model knows the kernels the lab runs, from their
 * sources: Debian's 6.1 and 6.12 (amd64 config: CONFIG_KVM_MAX_NR_VCPUS=4096 in 6.12). A release is
 * matched by its "major.minor"; another release gets the nearest older series, and says so.
 */
export interface KernelSeries {
  readonly series: string;
  /** KVM_MAX_VCPUS */
  readonly maxVcpus: number;
  /** Capabilities with a fixed answer in this series (the others: see checkExtensionFor). */
  readonly caps: Readonly<Partial<Record<KvmCapName, number>>>;
}

/** KVM_USER_MEM_SLOTS = SHRT_MAX - 3 internal slots on x86, in both. */
const NR_MEMSLOTS = 32767 - 3;

export const KERNEL_SERIES: readonly KernelSeries[] = [
  {
    series: "6.1",
    maxVcpus: 1024,
    caps: { NR_MEMSLOTS, READONLY_MEM: 1, SYS_ATTRIBUTES: 1 },
  },
  {
    series: "6.12",
    maxVcpus: 4096,
    caps: {
      NR_MEMSLOTS,
      READONLY_MEM: 1,
      SYS_ATTRIBUTES: 1,
      USER_MEMORY2: 1,
      MEMORY_FAULT_INFO: 1,
      X86_GUEST_MODE: 1,
      // BIT(KVM_X86_DEFAULT_VM): no SEV on the hosts modelled, no CONFIG_KVM_SW_PROTECTED_VM
      VM_TYPES: 1,
      // tdp_enabled: the model's hosts use two-dimensional paging (EPT/NPT)
      PRE_FAULT_MEMORY: 1,
      // APIC_BUS_CYCLE_NS_DEFAULT
      X86_APIC_BUS_CYCLES_NS: 1,
    },
  },
];

const majorMinor = (release: string): [number, number] | undefined => {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
};

/** The series a release belongs to: its own when known, else the nearest older one (or the oldest). */
export function kernelSeries(release: string): KernelSeries {
  const v = majorMinor(release);
  const key = (s: KernelSeries) => majorMinor(s.series)!;
  const older = KERNEL_SERIES.filter((s) => v && (key(s)[0] < v[0] || (key(s)[0] === v[0] && key(s)[1] <= v[1])));
  return older.at(-1) ?? KERNEL_SERIES[0]!;
}

/** Answers that depend on the kernel and its host rather than on the model's CPU or device. */
export function kernelCapability(k: KernelParams, cap: number): number | undefined {
  const s = kernelSeries(k.release);
  switch (cap) {
    case KVM_CAP.MAX_VCPUS:
      return s.maxVcpus;
    case KVM_CAP.MAX_VCPU_ID:
      // KVM_MAX_VCPU_IDS = KVM_MAX_VCPUS * KVM_VCPU_ID_RATIO (4)
      return s.maxVcpus * 4;
    case KVM_CAP.NR_VCPUS:
      return Math.min(k.onlineCpus, s.maxVcpus);
  }
  const name = (Object.keys(KVM_CAP) as KvmCapName[]).find((n) => KVM_CAP[n] === cap);
  return name === undefined ? undefined : s.caps[name];
}
