import { ModelBugError } from "@kvmx/core";
import { KVM_STRUCTS, type StructName } from "./structs/layout.js";

/**
 * ioctl request numbers, built the way <asm-generic/ioctl.h> builds them: dir(2) | size(14) |
 * type(8) | nr(8), dir bit 0 = write (userspace → kernel), bit 1 = read. Checked against the
 * system's <linux/kvm.h> in test/ioctls.test.ts.
 */
export const IOC_NONE = 0;
export const IOC_WRITE = 1;
export const IOC_READ = 2;
const IOC_NRSHIFT = 0;
const IOC_TYPESHIFT = 8;
const IOC_SIZESHIFT = 16;
const IOC_DIRSHIFT = 30;
const IOC_SIZEMAX = (1 << 14) - 1;

/** KVMIO, the ioctl "type" byte of every KVM request. */
export const KVMIO = 0xae;

export function _IOC(dir: number, type: number, nr: number, size: number): number {
  if (size < 0 || size > IOC_SIZEMAX) throw new ModelBugError(`ioctl size ${size} does not fit 14 bits`);
  // >>> 0 keeps read-direction numbers (bit 31 set) positive
  return ((dir << IOC_DIRSHIFT) | (size << IOC_SIZESHIFT) | (type << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT)) >>> 0;
}
export const _IO = (type: number, nr: number): number => _IOC(IOC_NONE, type, nr, 0);
export const _IOR = (type: number, nr: number, size: number): number => _IOC(IOC_READ, type, nr, size);
export const _IOW = (type: number, nr: number, size: number): number => _IOC(IOC_WRITE, type, nr, size);
export const _IOWR = (type: number, nr: number, size: number): number => _IOC(IOC_READ | IOC_WRITE, type, nr, size);

/** Which file descriptor an ioctl is issued on (rust-vmm's Kvm / VmFd / VcpuFd). */
export type FdLevel = "system" | "vm" | "vcpu";

export interface IoctlSpec {
  readonly dir: "none" | "r" | "w" | "rw";
  readonly nr: number;
  /** the struct whose sizeof is encoded in the number (for flexible structs, the header) */
  readonly struct?: StructName;
  /** fds it is valid on; KVM_CHECK_EXTENSION works on system and VM fds */
  readonly fd: readonly FdLevel[];
}

/** Every ioctl the structs of this package serve. */
export const KVM_IOCTL_SPECS = {
  KVM_GET_API_VERSION: { dir: "none", nr: 0x00, fd: ["system"] },
  KVM_CREATE_VM: { dir: "none", nr: 0x01, fd: ["system"] },
  KVM_CHECK_EXTENSION: { dir: "none", nr: 0x03, fd: ["system", "vm"] },
  KVM_GET_VCPU_MMAP_SIZE: { dir: "none", nr: 0x04, fd: ["system"] },
  KVM_GET_SUPPORTED_CPUID: { dir: "rw", nr: 0x05, struct: "kvm_cpuid2", fd: ["system"] },
  KVM_GET_EMULATED_CPUID: { dir: "rw", nr: 0x09, struct: "kvm_cpuid2", fd: ["system"] },
  KVM_CREATE_VCPU: { dir: "none", nr: 0x41, fd: ["vm"] },
  KVM_SET_USER_MEMORY_REGION: { dir: "w", nr: 0x46, struct: "kvm_userspace_memory_region", fd: ["vm"] },
  KVM_RUN: { dir: "none", nr: 0x80, fd: ["vcpu"] },
  KVM_GET_REGS: { dir: "r", nr: 0x81, struct: "kvm_regs", fd: ["vcpu"] },
  KVM_SET_REGS: { dir: "w", nr: 0x82, struct: "kvm_regs", fd: ["vcpu"] },
  KVM_GET_SREGS: { dir: "r", nr: 0x83, struct: "kvm_sregs", fd: ["vcpu"] },
  KVM_SET_SREGS: { dir: "w", nr: 0x84, struct: "kvm_sregs", fd: ["vcpu"] },
  KVM_GET_MSRS: { dir: "rw", nr: 0x88, struct: "kvm_msrs", fd: ["vcpu"] },
  KVM_SET_MSRS: { dir: "w", nr: 0x89, struct: "kvm_msrs", fd: ["vcpu"] },
  KVM_GET_FPU: { dir: "r", nr: 0x8c, struct: "kvm_fpu", fd: ["vcpu"] },
  KVM_SET_FPU: { dir: "w", nr: 0x8d, struct: "kvm_fpu", fd: ["vcpu"] },
  KVM_SET_CPUID2: { dir: "w", nr: 0x90, struct: "kvm_cpuid2", fd: ["vcpu"] },
  KVM_GET_CPUID2: { dir: "rw", nr: 0x91, struct: "kvm_cpuid2", fd: ["vcpu"] },
  KVM_GET_VCPU_EVENTS: { dir: "r", nr: 0x9f, struct: "kvm_vcpu_events", fd: ["vcpu"] },
  KVM_SET_VCPU_EVENTS: { dir: "w", nr: 0xa0, struct: "kvm_vcpu_events", fd: ["vcpu"] },
  KVM_GET_DEBUGREGS: { dir: "r", nr: 0xa1, struct: "kvm_debugregs", fd: ["vcpu"] },
  KVM_SET_DEBUGREGS: { dir: "w", nr: 0xa2, struct: "kvm_debugregs", fd: ["vcpu"] },
  KVM_GET_XSAVE: { dir: "r", nr: 0xa4, struct: "kvm_xsave", fd: ["vcpu"] },
  KVM_SET_XSAVE: { dir: "w", nr: 0xa5, struct: "kvm_xsave", fd: ["vcpu"] },
  KVM_GET_XCRS: { dir: "r", nr: 0xa6, struct: "kvm_xcrs", fd: ["vcpu"] },
  KVM_SET_XCRS: { dir: "w", nr: 0xa7, struct: "kvm_xcrs", fd: ["vcpu"] },
  KVM_GET_XSAVE2: { dir: "r", nr: 0xcf, struct: "kvm_xsave", fd: ["vcpu"] },
  KVM_GET_DEVICE_ATTR: { dir: "w", nr: 0xe2, struct: "kvm_device_attr", fd: ["system", "vm", "vcpu"] },
  KVM_HAS_DEVICE_ATTR: { dir: "w", nr: 0xe3, struct: "kvm_device_attr", fd: ["system", "vm", "vcpu"] },
} as const satisfies Record<string, IoctlSpec>;

export type KvmIoctlName = keyof typeof KVM_IOCTL_SPECS;

function numberOf(spec: IoctlSpec): number {
  const size = spec.struct ? KVM_STRUCTS[spec.struct].size : 0;
  switch (spec.dir) {
    case "none":
      return _IO(KVMIO, spec.nr);
    case "r":
      return _IOR(KVMIO, spec.nr, size);
    case "w":
      return _IOW(KVMIO, spec.nr, size);
    case "rw":
      return _IOWR(KVMIO, spec.nr, size);
  }
}

/** Request numbers by name, e.g. KVM_IOCTL.KVM_RUN === 0xae80. */
export const KVM_IOCTL = Object.fromEntries(
  Object.entries(KVM_IOCTL_SPECS).map(([name, spec]) => [name, numberOf(spec)]),
) as Record<KvmIoctlName, number>;

/** True for ioctls that hand the kernel caller-built contents (a rejection there is bad input). */
export function writesCallerData(name: KvmIoctlName): boolean {
  const spec: IoctlSpec = KVM_IOCTL_SPECS[name];
  return spec.dir === "w" || name === "KVM_CREATE_VCPU" || name === "KVM_SET_USER_MEMORY_REGION";
}
