import type { GuestMemory, KvmCap, Vm } from "../api.js";
import { KVM_CAP } from "../caps.js";
import { KvmError } from "../errors.js";
import { encodeStruct } from "../structs/codec.js";
import { closeAll } from "./close-all.js";
import { KvmFd } from "./fd-ioctl.js";
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_SHARED, PROT_READ, PROT_WRITE, type Libc } from "./libc.js";
import { Mapping } from "./mapping.js";
import { HostVcpu } from "./vcpu.js";

const PAGE = 4096;

export function capNumber(cap: KvmCap): number {
  return typeof cap === "number" ? cap : KVM_CAP[cap];
}

/** Guest memory: an anonymous private mapping registered in one memory slot. */
class HostGuestMemory implements GuestMemory {
  constructor(
    readonly slot: number,
    readonly guestPhysAddr: bigint,
    readonly size: number,
    readonly mapping: Mapping,
  ) {}

  get bytes(): Uint8Array {
    return this.mapping.bytes;
  }

  #offset(gpa: bigint, length: number): number {
    const off = gpa - this.guestPhysAddr;
    if (off < 0n || off + BigInt(length) > BigInt(this.size)) {
      throw new KvmError(`guest memory slot ${this.slot}: 0x${gpa.toString(16)}+${length} outside the region`, 14, "bad-input");
    }
    return Number(off);
  }

  write(gpa: bigint, data: Uint8Array): void {
    this.bytes.set(data, this.#offset(gpa, data.byteLength));
  }

  read(gpa: bigint, length: number): Uint8Array {
    const at = this.#offset(gpa, length);
    return this.bytes.slice(at, at + length);
  }
}

/** A real VM fd with the vCPUs and memory created through it. */
export class HostVm implements Vm {
  readonly #fd: KvmFd;
  readonly #mmapSize: number;
  readonly #vcpus = new Set<HostVcpu>();
  readonly #memory: HostGuestMemory[] = [];
  readonly #onClose: (vm: HostVm) => void;
  #xsave2Size: number | undefined;

  constructor(
    readonly libc: Libc,
    fd: number,
    mmapSize: number,
    onClose: (vm: HostVm) => void,
  ) {
    this.#fd = new KvmFd(fd, "vm", libc);
    this.#mmapSize = mmapSize;
    this.#onClose = onClose;
  }

  checkExtension(cap: KvmCap): number {
    return this.#fd.ioctlInt("KVM_CHECK_EXTENSION", capNumber(cap));
  }

  addMemory(slot: number, guestPhysAddr: bigint, size: number): GuestMemory {
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE !== 0 || guestPhysAddr % BigInt(PAGE) !== 0n) {
      throw new KvmError(`guest memory: size ${size} and address 0x${guestPhysAddr.toString(16)} must be page multiples`, 22, "bad-input");
    }
    // shared anonymous memory: a VMA of its own (shmem), never merged with a neighbouring private
    // mapping, so a process can see exactly which mappings are guest memory (/proc/self/maps)
    const mapping = Mapping.map(this.libc, `guest memory slot ${slot}`, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1);
    try {
      const region = encodeStruct("kvm_userspace_memory_region", {
        slot,
        flags: 0,
        guest_phys_addr: guestPhysAddr,
        memory_size: BigInt(size),
        userspace_addr: mapping.address,
      });
      this.#fd.ioctlPtr("KVM_SET_USER_MEMORY_REGION", region);
    } catch (err) {
      closeAll([() => mapping.unmap()]);
      throw err;
    }
    const mem = new HostGuestMemory(slot, guestPhysAddr, size, mapping);
    this.#memory.push(mem);
    return mem;
  }

  createVcpu(id: number): HostVcpu {
    const fd = this.#fd.ioctlInt("KVM_CREATE_VCPU", id);
    // HostVcpu owns fd from here: it closes it itself if mapping kvm_run fails
    const vcpu = new HostVcpu(this.libc, id, fd, this.#mmapSize, () => this.#xsave2(), (v) => this.#vcpus.delete(v));
    this.#vcpus.add(vcpu);
    return vcpu;
  }

  /** KVM_CAP_XSAVE2 on this VM, asked once (0 when the kernel predates it). */
  #xsave2(): number {
    this.#xsave2Size ??= this.checkExtension("XSAVE2");
    return this.#xsave2Size;
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  close(): void {
    if (this.#fd.closed && this.#vcpus.size === 0 && this.#memory.length === 0) return;
    // vCPUs first (they reference the VM), then the VM fd, then the memory KVM no longer maps
    const vcpus = [...this.#vcpus];
    const memory = this.#memory.splice(0);
    closeAll([
      ...vcpus.map((v) => () => v.close()),
      () => this.#fd.close(),
      ...memory.map((m) => () => m.mapping.unmap()),
      () => this.#onClose(this),
    ]);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
