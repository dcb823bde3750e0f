import type { GuestMemory, KvmCap, Vm } from "../api.js";
import { KVM_CAP } from "../caps.js";
import { ERRNO } from "../errno.js";
import { KvmError } from "../errors.js";
import { GuestPhysSpace } from "./guest-memory.js";
import type { ResolvedModelConfig } from "./model-config.js";
import { ModelVcpu } from "./model-vcpu.js";

/** A simulated VM fd: guest memory slots and vCPUs. */
export class ModelVm implements Vm {
  readonly memory = new GuestPhysSpace();
  readonly #vcpus = new Map<number, ModelVcpu>();
  #closed = false;

  constructor(
    readonly cfg: ResolvedModelConfig,
    readonly mmapSize: number,
    readonly xsave2Size: number,
    readonly caps: (cap: KvmCap) => number,
    readonly onClose: (vm: ModelVm) => void,
  ) {}

  #check(): void {
    if (this.#closed) throw new KvmError("vm is closed", ERRNO.EBADF, "internal");
  }

  checkExtension(cap: KvmCap): number {
    this.#check();
    return this.caps(cap);
  }

  addMemory(slot: number, guestPhysAddr: bigint, size: number): GuestMemory {
    this.#check();
    return this.memory.add(slot, guestPhysAddr, size);
  }

  createVcpu(id: number): ModelVcpu {
    this.#check();
    // kvm_vm_ioctl_create_vcpu: id beyond KVM_MAX_VCPU_IDS is EINVAL, a second vCPU with one id EEXIST
    if (!Number.isInteger(id) || id < 0 || id >= this.caps(KVM_CAP.MAX_VCPU_ID)) throw KvmError.fromIoctl("KVM_CREATE_VCPU", ERRNO.EINVAL, true);
    if (this.#vcpus.has(id)) throw KvmError.fromIoctl("KVM_CREATE_VCPU", ERRNO.EEXIST, true);
    const v = new ModelVcpu(id, this.cfg, this.memory, this.mmapSize, this.xsave2Size, (x) => this.#vcpus.delete(x.id));
    this.#vcpus.set(id, v);
    return v;
  }

  get vcpus(): readonly ModelVcpu[] {
    return [...this.#vcpus.values()];
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    for (const v of [...this.#vcpus.values()]) v.close();
    this.#closed = true;
    this.onClose(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
