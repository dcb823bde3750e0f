import type { CpuidKind, Kvm, KvmCap } from "../api.js";
import { encodeStruct } from "../structs/codec.js";
import { checkCpuidBuffer } from "../structs/flexible.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./libc.js";
import { Mapping } from "./mapping.js";
import { KvmError } from "../errors.js";
import { decodeKvmCpuid2, encodeKvmCpuid2, type KvmCpuidEntry2 } from "../structs/flexible.js";
import { closeAll } from "./close-all.js";
import { KvmFd } from "./fd-ioctl.js";
import { libc, O_CLOEXEC, O_RDWR, type Libc } from "./libc.js";
import { capNumber, HostVm } from "./vm.js";

export const DEFAULT_KVM_PATH = "/dev/kvm";
const E2BIG = 7;
const ENXIO = 6;
/** KVM_GET_SUPPORTED_CPUID: start at KVM's own limit (KVM_MAX_CPUID_ENTRIES = 256), grow on E2BIG. */
const CPUID_START = 256;
const CPUID_MAX = 4096;

function loadLibc(): Libc {
  try {
    return libc();
  } catch (err) {
    throw new KvmError(`load libc through koffi: ${err instanceof Error ? err.message : String(err)}`, 38 /* ENOSYS */, "unavailable");
  }
}

/** The real /dev/kvm system fd. */
export class HostKvm implements Kvm {
  readonly #fd: KvmFd;
  readonly #vms = new Set<HostVm>();
  #mmapSize: number | undefined;

  private constructor(
    fd: number,
    readonly path: string,
    readonly libc: Libc,
  ) {
    this.#fd = new KvmFd(fd, path, libc);
  }

  /**
   * Opens the device; a missing or inaccessible device is KvmError category "unavailable". `c` is the
   * libc to call (koffi's by default; tests pass a simulated one to drive the error paths).
   */
  static open(path = DEFAULT_KVM_PATH, c: Libc = loadLibc()): HostKvm {
    const fd = c.open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) throw KvmError.fromOpen(path, c.errno());
    return new HostKvm(fd, path, c);
  }

  apiVersion(): number {
    return this.#fd.ioctlInt("KVM_GET_API_VERSION");
  }

  checkExtension(cap: KvmCap): number {
    return this.#fd.ioctlInt("KVM_CHECK_EXTENSION", capNumber(cap));
  }

  vcpuMmapSize(): number {
    this.#mmapSize ??= this.#fd.ioctlInt("KVM_GET_VCPU_MMAP_SIZE");
    return this.#mmapSize;
  }

  getSupportedCpuid(): KvmCpuidEntry2[] {
    return this.#cpuid("KVM_GET_SUPPORTED_CPUID");
  }

  getEmulatedCpuid(): KvmCpuidEntry2[] {
    return this.#cpuid("KVM_GET_EMULATED_CPUID");
  }

  #cpuid(ioctl: "KVM_GET_SUPPORTED_CPUID" | "KVM_GET_EMULATED_CPUID"): KvmCpuidEntry2[] {
    for (let capacity = CPUID_START; capacity <= CPUID_MAX; capacity *= 2) {
      const buf = encodeKvmCpuid2([], capacity);
      const { result, errno } = this.#fd.tryIoctlPtr(ioctl, buf);
      if (result >= 0) return decodeKvmCpuid2(buf);
      if (errno !== E2BIG) throw KvmError.fromIoctl(ioctl, errno, false);
    }
    throw KvmError.fromIoctl(ioctl, E2BIG, false);
  }

  getCpuidInto(kind: CpuidKind, buf: Uint8Array): void {
    const ioctl = kind === "supported" ? "KVM_GET_SUPPORTED_CPUID" : "KVM_GET_EMULATED_CPUID";
    checkCpuidBuffer(ioctl, buf);
    this.#fd.ioctlPtr(ioctl, buf);
  }

  getDeviceAttr(group: number, attr: bigint): bigint {
    // KVM writes the value to attr.addr: a page of our own native memory, read back and unmapped
    const page = Mapping.map(this.libc, "device attribute value", 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    try {
      this.#fd.ioctlPtr("KVM_GET_DEVICE_ATTR", encodeStruct("kvm_device_attr", { flags: 0, group, attr, addr: page.address }));
      return new DataView(page.bytes.buffer, page.bytes.byteOffset, 8).getBigUint64(0, true);
    } finally {
      page.unmap();
    }
  }

  hasDeviceAttr(group: number, attr: bigint): boolean {
    const { result, errno } = this.#fd.tryIoctlPtr("KVM_HAS_DEVICE_ATTR", encodeStruct("kvm_device_attr", { flags: 0, group, attr, addr: 0n }));
    if (result >= 0) return true;
    if (errno === ENXIO) return false;
    throw KvmError.fromIoctl("KVM_HAS_DEVICE_ATTR", errno, false);
  }

  createVm(): HostVm {
    const mmapSize = this.vcpuMmapSize();
    const fd = this.#fd.ioctlInt("KVM_CREATE_VM", 0);
    const vm = new HostVm(this.libc, fd, mmapSize, (v) => this.#vms.delete(v));
    this.#vms.add(vm);
    return vm;
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  close(): void {
    const vms = [...this.#vms];
    closeAll([...vms.map((vm) => () => vm.close()), () => this.#fd.close()]);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Opens the real /dev/kvm (or `path`). */
export function openKvm(path = DEFAULT_KVM_PATH): HostKvm {
  return HostKvm.open(path);
}

/**
 * Why the real KVM cannot be used here, or undefined when it can: tries the open (and closes it).
 * Tests use it to skip with a printed reason.
 */
export function kvmUnavailableReason(path = DEFAULT_KVM_PATH): string | undefined {
  try {
    const kvm = HostKvm.open(path);
    kvm.close();
    return undefined;
  } catch (err) {
    if (err instanceof KvmError && err.category === "unavailable") return err.message;
    throw err;
  }
}
