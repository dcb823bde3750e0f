import { ERRNO } from "../src/errno.js";
import { KVM_EXIT } from "../src/exit-reasons.js";
import type { Libc } from "../src/host/libc.js";
import { MAP_FAILED } from "../src/host/libc.js";
import { KVM_IOCTL, type KvmIoctlName } from "../src/ioctls.js";
import { KVM_CAP } from "../src/caps.js";
import { encodeStructInto } from "../src/structs/codec.js";
import { KVM_RUN_EXIT_UNION_OFFSET } from "../src/structs/layout.js";

/**
 * A libc whose "kernel" is a small table-driven imitation of /dev/kvm, used to drive the real
 * binding's resource handling and error paths on machines without the device. It keeps every fd and
 * mapping it handed out so tests can check that nothing leaks; `fail` injects one errno into the next
 * call of a kind. It models resources, not KVM semantics: state ioctls just store what SET wrote.
 */
export const SIM_PATH = "/dev/kvm-simulated";

type FdKind = { kind: "kvm" } | { kind: "vm"; vcpuIds: Set<number> } | { kind: "vcpu"; vm: number; id: number };

export type Failure = "mmap" | "munmap" | "close" | KvmIoctlName;

const BY_NUMBER = new Map<number, KvmIoctlName>(Object.entries(KVM_IOCTL).map(([k, v]) => [v, k as KvmIoctlName]));

export class SimulatedLibc implements Libc {
  readonly fds = new Map<number, FdKind>();
  readonly mappings = new Map<bigint, { buffer: ArrayBuffer; fd: number }>();
  readonly fail = new Map<Failure, number>();
  /** KVM_GET_SUPPORTED_CPUID needs this many entries (E2BIG below). */
  cpuidEntries = 300;
  xsave2Size = 4096;
  supportedXcr0 = 0xe7n;
  mmapSize = 3 * 4096;
  /** Exits KVM_RUN produces, in order; each writes kvm_run like the kernel would. */
  readonly exits: ((run: Uint8Array) => void | number)[] = [];
  readonly state = new Map<string, Uint8Array>();
  readonly calls: string[] = [];
  #nextFd = 100;
  #nextAddr = 0x7f00_0000_0000n;
  #errno = 0;

  #failWith(kind: Failure): boolean {
    const e = this.fail.get(kind);
    if (e === undefined) return false;
    this.fail.delete(kind);
    this.#errno = e;
    return true;
  }

  #err(e: number): number {
    this.#errno = e;
    return -1;
  }

  #newFd(k: FdKind): number {
    const fd = this.#nextFd++;
    this.fds.set(fd, k);
    return fd;
  }

  errno(): number {
    return this.#errno;
  }

  open(path: string): number {
    if (path !== SIM_PATH) return this.#err(ERRNO.ENOENT);
    return this.#newFd({ kind: "kvm" });
  }

  close(fd: number): number {
    this.calls.push(`close ${fd}`);
    if (!this.fds.has(fd)) return this.#err(ERRNO.EBADF);
    // like the kernel, the fd is gone even when close reports an error
    this.fds.delete(fd);
    if (this.#failWith("close")) return -1;
    return 0;
  }

  mmap(_addr: null, length: number, _prot: number, _flags: number, fd: number): bigint {
    if (this.#failWith("mmap")) return MAP_FAILED;
    if (length <= 0) {
      this.#errno = ERRNO.EINVAL;
      return MAP_FAILED;
    }
    if (fd >= 0 && this.fds.get(fd)?.kind !== "vcpu") {
      this.#errno = ERRNO.ENODEV;
      return MAP_FAILED;
    }
    const addr = this.#nextAddr;
    this.#nextAddr += BigInt(length + 4096);
    this.mappings.set(addr, { buffer: new ArrayBuffer(length), fd });
    return addr;
  }

  munmap(addr: bigint, length: number): number {
    this.calls.push(`munmap 0x${addr.toString(16)}`);
    const m = this.mappings.get(addr);
    if (!m || m.buffer.byteLength !== length) return this.#err(ERRNO.EINVAL);
    this.mappings.delete(addr);
    if (this.#failWith("munmap")) return -1;
    return 0;
  }

  view(addr: bigint, length: number): ArrayBuffer {
    const m = this.mappings.get(addr);
    if (!m || m.buffer.byteLength !== length) throw new RangeError("view of an unknown mapping");
    return m.buffer;
  }

  #runOf(fd: number): Uint8Array | undefined {
    for (const m of this.mappings.values()) if (m.fd === fd) return new Uint8Array(m.buffer);
    return undefined;
  }

  ioctlInt(fd: number, request: number, arg: number): number {
    const name = BY_NUMBER.get(request);
    const k = this.fds.get(fd);
    if (!k) return this.#err(ERRNO.EBADF);
    if (!name) return this.#err(ERRNO.ENOTTY);
    if (this.#failWith(name)) return -1;
    switch (name) {
      case "KVM_GET_API_VERSION":
        return 12;
      case "KVM_GET_VCPU_MMAP_SIZE":
        return this.mmapSize;
      case "KVM_CHECK_EXTENSION":
        if (arg === KVM_CAP.XSAVE2) return k.kind === "vm" ? this.xsave2Size : 0;
        return arg === KVM_CAP.SYNC_REGS ? 7 : 1;
      case "KVM_CREATE_VM":
        return k.kind === "kvm" ? this.#newFd({ kind: "vm", vcpuIds: new Set() }) : this.#err(ERRNO.ENOTTY);
      case "KVM_CREATE_VCPU":
        if (k.kind !== "vm") return this.#err(ERRNO.ENOTTY);
        if (k.vcpuIds.has(arg)) return this.#err(ERRNO.EEXIST);
        k.vcpuIds.add(arg);
        return this.#newFd({ kind: "vcpu", vm: fd, id: arg });
      case "KVM_RUN": {
        const run = this.#runOf(fd);
        const next = this.exits.shift();
        if (!run || !next) return this.#err(ERRNO.EIO);
        const r = next(run);
        return typeof r === "number" ? this.#err(r) : 0;
      }
      default:
        return this.#err(ERRNO.ENOTTY);
    }
  }

  ioctlPtr(fd: number, request: number, buf: Uint8Array): number {
    const name = BY_NUMBER.get(request);
    if (!this.fds.has(fd)) return this.#err(ERRNO.EBADF);
    if (!name) return this.#err(ERRNO.ENOTTY);
    this.calls.push(`${name} ${buf.byteLength}`);
    if (this.#failWith(name)) return -1;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    switch (name) {
      case "KVM_GET_SUPPORTED_CPUID": {
        const nent = dv.getUint32(0, true);
        if (nent < this.cpuidEntries) return this.#err(ERRNO.E2BIG);
        dv.setUint32(0, this.cpuidEntries, true);
        for (let i = 0; i < this.cpuidEntries; i++) dv.setUint32(8 + i * 40, i, true);
        // entry 13 is leaf 0xD.0: supported XCR0 = EDX:EAX = this.supportedXcr0
        if (this.cpuidEntries > 13) {
          dv.setUint32(8 + 13 * 40 + 12, Number(this.supportedXcr0 & 0xffffffffn), true);
          dv.setUint32(8 + 13 * 40 + 24, Number(this.supportedXcr0 >> 32n), true);
        }
        return 0;
      }
      case "KVM_GET_MSRS": {
        // answers the first MSR only, as KVM does when the second one fails
        const n = Math.min(1, dv.getUint32(0, true));
        for (let i = 0; i < n; i++) dv.setBigUint64(8 + i * 16 + 8, 0xabcn, true);
        return n;
      }
      case "KVM_SET_MSRS":
        return dv.getUint32(0, true);
      case "KVM_GET_XSAVE2":
        if (buf.byteLength < this.xsave2Size) return this.#err(ERRNO.EFAULT);
        buf.set(this.state.get("XSAVE") ?? new Uint8Array(this.xsave2Size));
        return 0;
      case "KVM_SET_XSAVE":
        if (buf.byteLength < this.xsave2Size) return this.#err(ERRNO.EFAULT);
        this.state.set("XSAVE", buf.slice(0, this.xsave2Size));
        return 0;
      default: {
        const m = /^KVM_(GET|SET)_(.+)$/.exec(name);
        if (!m) return 0;
        if (m[1] === "SET") this.state.set(m[2]!, buf.slice());
        else buf.set(this.state.get(m[2]!)?.subarray(0, buf.byteLength) ?? new Uint8Array(buf.byteLength));
        return 0;
      }
    }
  }
}

/** An exit writer: KVM_EXIT_IO OUT of `bytes` on `port`, data at the second page. */
export function ioOutExit(port: number, bytes: number[]): (run: Uint8Array) => void {
  return (run) => {
    new DataView(run.buffer, run.byteOffset).setUint32(8, KVM_EXIT.IO, true);
    encodeStructInto("kvm_run_io", { direction: 1, size: 1, port, count: bytes.length, data_offset: 4096n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    run.set(bytes, 4096);
  };
}
