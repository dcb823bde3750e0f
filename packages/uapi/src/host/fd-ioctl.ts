import { KvmError } from "../errors.js";
import { KVM_IOCTL, writesCallerData, type KvmIoctlName } from "../ioctls.js";
import type { Libc } from "./libc.js";

/**
 * A KVM file descriptor owned by one object: ioctls by name, failures as KvmError, and a close
 * that runs once. Every host object (system, VM, vCPU) holds one of these.
 */
export class KvmFd {
  #fd: number;
  constructor(
    fd: number,
    readonly what: string,
    readonly libc: Libc,
  ) {
    this.#fd = fd;
  }

  get fd(): number {
    if (this.#fd < 0) throw new KvmError(`${this.what} is closed`, 9 /* EBADF */, "internal");
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** An ioctl with an integer (or no) argument; returns the kernel's non-negative result. */
  ioctlInt(name: KvmIoctlName, arg = 0): number {
    const r = this.libc.ioctlInt(this.fd, KVM_IOCTL[name], arg);
    if (r < 0) throw KvmError.fromIoctl(name, this.libc.errno(), writesCallerData(name));
    return r;
  }

  /** An ioctl whose argument points at `buf` (read, written or both by the kernel). */
  ioctlPtr(name: KvmIoctlName, buf: Uint8Array): number {
    const r = this.libc.ioctlPtr(this.fd, KVM_IOCTL[name], buf);
    if (r < 0) throw KvmError.fromIoctl(name, this.libc.errno(), writesCallerData(name));
    return r;
  }

  /** Like ioctlPtr but returns the errno instead of throwing (for retry-on-E2BIG loops). */
  tryIoctlPtr(name: KvmIoctlName, buf: Uint8Array): { result: number; errno: number } {
    const r = this.libc.ioctlPtr(this.fd, KVM_IOCTL[name], buf);
    return r < 0 ? { result: r, errno: this.libc.errno() } : { result: r, errno: 0 };
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    if (this.libc.close(fd) < 0) throw new KvmError(`close ${this.what}`, this.libc.errno(), "internal");
  }
}
