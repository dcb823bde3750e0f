/**
 * KVM_CAP_* numbers for KVM_CHECK_EXTENSION (include/uapi/linux/kvm.h), those this package's
 * ioctls depend on. The value KVM_CHECK_EXTENSION returns is a boolean for most, a size for
 * KVM_CAP_XSAVE2 (bytes of KVM_GET_XSAVE2, docs/facts.md#kvm-get-xsave) and a mask for KVM_CAP_SYNC_REGS.
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
  // limits and capabilities that differ between kernel versions (model/kernel-release.ts)
  NR_MEMSLOTS: 10,
  READONLY_MEM: 81,
  MAX_VCPU_ID: 128,
  SYS_ATTRIBUTES: 209,
  USER_MEMORY2: 231,
  MEMORY_FAULT_INFO: 232,
  VM_TYPES: 235,
  PRE_FAULT_MEMORY: 236,
  X86_APIC_BUS_CYCLES_NS: 237,
  X86_GUEST_MODE: 238,
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
  NR_MEMSLOTS: "count",
  READONLY_MEM: "bool",
  MAX_VCPU_ID: "count",
  SYS_ATTRIBUTES: "bool",
  USER_MEMORY2: "bool",
  MEMORY_FAULT_INFO: "bool",
  VM_TYPES: "mask",
  PRE_FAULT_MEMORY: "bool",
  X86_APIC_BUS_CYCLES_NS: "count",
  X86_GUEST_MODE: "bool",
};

/** KVM_API_VERSION: the only value KVM_GET_API_VERSION has ever returned. */
export const KVM_API_VERSION = 12;

/** KVM_GET_DEVICE_ATTR on the system fd: group 0, attribute KVM_X86_XCOMP_GUEST_SUPP = the supported XCR0. */
export const KVM_X86_XCOMP_GUEST_SUPP = 0n;
/** Group KVM_X86_GRP_SEV (kvm_amd, from 6.10): attribute KVM_X86_SEV_VMSA_FEATURES. */
export const KVM_X86_GRP_SEV = 1;
