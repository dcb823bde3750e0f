/**
 * KVM_CAP_* numbers for KVM_CHECK_EXTENSION (include/uapi/linux/kvm.h), those this package's
 * ioctls depend on. The value KVM_CHECK_EXTENSION returns is a boolean for most, a size for
 * KVM_CAP_XSAVE2 (bytes of KVM_GET_XSAVE2, FACTS.md §6) and a mask for KVM_CAP_SYNC_REGS.
 */
export const KVM_CAP = {
  USER_MEMORY: 3,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  VCPU_EVENTS: 41,
  DEBUGREGS: 50,
  XSAVE: 55,
  XCRS: 56,
  MAX_VCPUS: 66,
  SYNC_REGS: 74,
  IMMEDIATE_EXIT: 136,
  XSAVE2: 208,
} as const;
export type KvmCapName = keyof typeof KVM_CAP;

/** What KVM_CHECK_EXTENSION's result means for a capability, for printing. */
export const KVM_CAP_MEANING: Readonly<Record<KvmCapName, "bool" | "count" | "bytes" | "mask">> = {
  USER_MEMORY: "bool",
  EXT_CPUID: "bool",
  NR_VCPUS: "count",
  VCPU_EVENTS: "bool",
  DEBUGREGS: "bool",
  XSAVE: "bool",
  XCRS: "bool",
  MAX_VCPUS: "count",
  SYNC_REGS: "mask",
  IMMEDIATE_EXIT: "bool",
  XSAVE2: "bytes",
};

/** KVM_API_VERSION: the only value KVM_GET_API_VERSION has ever returned. */
export const KVM_API_VERSION = 12;
