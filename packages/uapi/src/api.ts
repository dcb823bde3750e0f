import type { KvmCapName } from "./caps.js";
import type { KvmCpuidEntry2, KvmMsrEntry } from "./structs/flexible.js";
import type { KvmExit, KvmSyncRegs } from "./structs/kvm-run.js";
import type { KvmXcrs } from "./structs/kvm-xcrs.js";
import type { StructValue } from "./structs/layout.js";

/**
 * One API over two kernels: the real /dev/kvm (src/host) and the simulated one over the kvmx model.
 * Shaped like rust-vmm's kvm-ioctls — one type per file-descriptor level — with kvm.h structs as
 * plain decoded values. Failures are KvmError with the errno the kernel (or the model) returned.
 * Every object owns kernel resources: call close() (or use `using`); closing a parent closes its
 * children (Kvm → Vms → Vcpus and guest memory).
 */

export type KvmRegs = StructValue<"kvm_regs">;
export type KvmSregs = StructValue<"kvm_sregs">;
export type KvmSegment = StructValue<"kvm_segment">;
export type KvmDtable = StructValue<"kvm_dtable">;
export type KvmFpu = StructValue<"kvm_fpu">;
export type KvmVcpuEvents = StructValue<"kvm_vcpu_events">;
export type KvmDebugregs = StructValue<"kvm_debugregs">;
export type KvmUserspaceMemoryRegion = StructValue<"kvm_userspace_memory_region">;
export type { KvmCpuidEntry2, KvmMsrEntry, KvmExit, KvmSyncRegs, KvmXcrs };

/** KVM_GET_SUPPORTED_CPUID or KVM_GET_EMULATED_CPUID. */
export type CpuidKind = "supported" | "emulated";

/** vCPU GET ioctls whose output can land in a buffer the caller provides (and prefills). */
export type VcpuGetIoctl =
  | "KVM_GET_REGS"
  | "KVM_GET_SREGS"
  | "KVM_GET_FPU"
  | "KVM_GET_XSAVE"
  | "KVM_GET_XSAVE2"
  | "KVM_GET_XCRS"
  | "KVM_GET_VCPU_EVENTS"
  | "KVM_GET_DEBUGREGS";

/** Capability argument: a KVM_CAP name ("XSAVE2") or its raw number. */
export type KvmCap = KvmCapName | number;

/** The system fd (open("/dev/kvm")). */
export interface Kvm extends Disposable {
  /** KVM_GET_API_VERSION (12 on every kernel since 2.6.22). */
  apiVersion(): number;
  /** KVM_CHECK_EXTENSION on the system fd: 0 = absent; otherwise a flag, count, size or mask. */
  checkExtension(cap: KvmCap): number;
  /** KVM_GET_VCPU_MMAP_SIZE: bytes of each vCPU's kvm_run mapping. */
  vcpuMmapSize(): number;
  /** KVM_GET_SUPPORTED_CPUID, retried with a larger buffer while the kernel answers E2BIG. */
  getSupportedCpuid(): KvmCpuidEntry2[];
  /** KVM_GET_EMULATED_CPUID: the features KVM emulates whatever the host CPU has. */
  getEmulatedCpuid(): KvmCpuidEntry2[];
  /**
   * KVM_GET_SUPPORTED_CPUID or KVM_GET_EMULATED_CPUID into `buf`, a kvm_cpuid2 the caller sized and
   * filled: its nent says how many entries fit. On success KVM writes nent and that many entries and
   * nothing else; on failure (E2BIG: too few entries; EINVAL: EMULATED with non-zero padding) nothing.
   */
  getCpuidInto(kind: CpuidKind, buf: Uint8Array): void;
  /** KVM_GET_DEVICE_ATTR on the system fd: the u64 KVM writes (KVM_X86_XCOMP_GUEST_SUPP: supported XCR0). */
  getDeviceAttr(group: number, attr: bigint): bigint;
  /** KVM_HAS_DEVICE_ATTR on the system fd: true when KVM answers 0, false when ENXIO. */
  hasDeviceAttr(group: number, attr: bigint): boolean;
  /** KVM_CREATE_VM (machine type 0). */
  createVm(): Vm;
  close(): void;
}

/** Guest-physical memory backed by a userspace mapping registered with KVM_SET_USER_MEMORY_REGION. */
export interface GuestMemory {
  readonly slot: number;
  readonly guestPhysAddr: bigint;
  readonly size: number;
  /** The memory itself; writes are seen by the guest. Invalid after the VM is closed. */
  readonly bytes: Uint8Array;
  /** Copies `data` to guest-physical `gpa` (which must lie inside this region). */
  write(gpa: bigint, data: Uint8Array): void;
  /** Copies `length` bytes from guest-physical `gpa`. */
  read(gpa: bigint, length: number): Uint8Array;
}

/** A VM fd. */
export interface Vm extends Disposable {
  /** KVM_CHECK_EXTENSION on the VM fd (KVM_CAP_XSAVE2 is meant to be asked here). */
  checkExtension(cap: KvmCap): number;
  /** Allocates `size` bytes (a multiple of 4096) and maps them at `guestPhysAddr` in slot `slot`. */
  addMemory(slot: number, guestPhysAddr: bigint, size: number): GuestMemory;
  /** KVM_CREATE_VCPU, plus the kvm_run mapping. */
  createVcpu(id: number): Vcpu;
  close(): void;
}

/** A vCPU fd with its kvm_run mapping. */
export interface Vcpu extends Disposable {
  readonly id: number;
  getRegs(): KvmRegs;
  setRegs(regs: KvmRegs): void;
  getSregs(): KvmSregs;
  setSregs(sregs: KvmSregs): void;
  getFpu(): KvmFpu;
  setFpu(fpu: KvmFpu): void;
  /** KVM_GET_XSAVE: the 4096-byte standard-format image. */
  getXsave(): Uint8Array;
  /** KVM_GET_XSAVE2 with `size` = KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) (asked on the VM fd when omitted). */
  getXsave2(size?: number): Uint8Array;
  /** KVM_SET_XSAVE with an image of 4096 bytes or more (the KVM_CAP_XSAVE2 size). */
  setXsave(image: Uint8Array): void;
  getXcrs(): KvmXcrs;
  setXcrs(xcrs: KvmXcrs): void;
  setCpuid2(entries: readonly KvmCpuidEntry2[]): void;
  /** KVM_GET_CPUID2: the table KVM holds (KVM_SET_CPUID2's, with its runtime fields updated). */
  getCpuid2(): KvmCpuidEntry2[];
  /** KVM_GET_CPUID2 into a caller-sized kvm_cpuid2 (E2BIG when its nent is too small; nothing written then). */
  getCpuid2Into(buf: Uint8Array): void;
  /**
   * A GET ioctl into `buf` (the caller's, prefilled as it likes): KVM writes the struct (for
   * KVM_GET_XSAVE2 the KVM_CAP_XSAVE2 size) from offset 0 and nothing past it. `buf` must be at least
   * that long (KvmError bad-input otherwise, before any ioctl).
   */
  getInto(ioctl: VcpuGetIoctl, buf: Uint8Array): void;
  getDebugregs(): KvmDebugregs;
  setDebugregs(d: KvmDebugregs): void;
  getVcpuEvents(): KvmVcpuEvents;
  setVcpuEvents(e: KvmVcpuEvents): void;
  /** KVM_GET_MSRS for these indices; returns the entries KVM filled (it stops at the first failure). */
  getMsrs(indices: readonly number[]): KvmMsrEntry[];
  /** KVM_SET_MSRS; returns how many entries KVM accepted. */
  setMsrs(entries: readonly KvmMsrEntry[]): number;
  /** KVM_RUN until the next exit to userspace. */
  run(): KvmExit;
  /** kvm_run sync-regs area (KVM_CAP_SYNC_REGS). */
  readonly syncRegs: SyncRegsAccess;
  close(): void;
}

/** kvm_run.kvm_valid_regs / kvm_dirty_regs / s.regs, shared between the VMM and KVM. */
export interface SyncRegsAccess {
  /** Classes (KVM_SYNC_X86_*) KVM stores into s.regs on every exit. */
  valid: bigint;
  /** Classes KVM loads from s.regs before the next entry (KVM clears them as it does). */
  dirty: bigint;
  /** The current s.regs contents. */
  read(): KvmSyncRegs;
  /** Writes parts of s.regs; mark them in `dirty` to have KVM load them. */
  write(parts: Partial<KvmSyncRegs>): void;
}
