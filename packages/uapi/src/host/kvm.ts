import type { Kvm, KvmCap } from "../api.js";
import { KvmError } from "../errors.js";
import { decodeKvmCpuid2, encodeKvmCpuid2, type KvmCpuidEntry2 } from "../structs/flexible.js";
import { closeAll } from "./close-all.js";
import { KvmFd } from "./fd-ioctl.js";
import { libc, O_CLOEXEC, O_RDWR, type Libc } from "./libc.js";
import { capNumber, HostVm } from "./vm.js";

export const DEFAULT_KVM_PATH = "/dev/kvm";
const E2BIG = 7;
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
    for (let capacity = CPUID_START; capacity <= CPUID_MAX; capacity *= 2) {
      const buf = encodeKvmCpuid2([], capacity);
      const { result, errno } = this.#fd.tryIoctlPtr("KVM_GET_SUPPORTED_CPUID", buf);
      if (result >= 0) return decodeKvmCpuid2(buf);
      if (errno !== E2BIG) throw KvmError.fromIoctl("KVM_GET_SUPPORTED_CPUID", errno, false);
    }
    throw KvmError.fromIoctl("KVM_GET_SUPPORTED_CPUID", E2BIG, false);
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
