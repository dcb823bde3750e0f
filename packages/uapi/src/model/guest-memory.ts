import type { GuestMemory } from "../api.js";
import { ERRNO } from "../errno.js";
import { KvmError } from "../errors.js";

const PAGE = 4096;

/** A memory slot of the simulated VM: a plain byte array standing for the VMM's mapping. */
export class ModelGuestMemory implements GuestMemory {
  readonly bytes: Uint8Array;

  constructor(
    readonly slot: number,
    readonly guestPhysAddr: bigint,
    readonly size: number,
  ) {
    this.bytes = new Uint8Array(size);
  }

  contains(gpa: bigint, length: number): boolean {
    return gpa >= this.guestPhysAddr && gpa + BigInt(length) <= this.guestPhysAddr + BigInt(this.size);
  }

  #offset(gpa: bigint, length: number): number {
    if (!this.contains(gpa, length)) {
      throw new KvmError(`guest memory slot ${this.slot}: 0x${gpa.toString(16)}+${length} outside the region`, ERRNO.EFAULT, "bad-input");
    }
    return Number(gpa - this.guestPhysAddr);
  }

  write(gpa: bigint, data: Uint8Array): void {
    this.bytes.set(data, this.#offset(gpa, data.byteLength));
  }

  read(gpa: bigint, length: number): Uint8Array {
    const at = this.#offset(gpa, length);
    return this.bytes.slice(at, at + length);
  }
}

/** The guest-physical address space: the VM's slots. Unbacked addresses read as all-ones (no device). */
export class GuestPhysSpace {
  readonly slots: ModelGuestMemory[] = [];

  add(slot: number, gpa: bigint, size: number): ModelGuestMemory {
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE !== 0 || gpa % BigInt(PAGE) !== 0n || gpa < 0n) {
      throw new KvmError(`KVM_SET_USER_MEMORY_REGION: size ${size} and address 0x${gpa.toString(16)} must be page multiples`, ERRNO.EINVAL, "bad-input");
    }
    const end = gpa + BigInt(size);
    for (const s of this.slots) {
      // a new mapping for an existing slot changes its userspace_addr, which kvm_set_memory_region refuses
      if (s.slot === slot) throw new KvmError(`KVM_SET_USER_MEMORY_REGION: slot ${slot} already exists`, ERRNO.EINVAL, "bad-input");
      // KVM refuses overlapping slots with EEXIST (kvm_set_memory_region)
      if (gpa < s.guestPhysAddr + BigInt(s.size) && s.guestPhysAddr < end) {
        throw new KvmError(`KVM_SET_USER_MEMORY_REGION: 0x${gpa.toString(16)}+${size} overlaps slot ${s.slot}`, ERRNO.EEXIST, "bad-input");
      }
    }
    const mem = new ModelGuestMemory(slot, gpa, size);
    this.slots.push(mem);
    return mem;
  }

  /** The slot holding byte `gpa`, or undefined (MMIO in a real VM). */
  slotOf(gpa: bigint): ModelGuestMemory | undefined {
    return this.slots.find((s) => s.contains(gpa, 1));
  }

  readByte(gpa: bigint): number | undefined {
    const s = this.slotOf(gpa);
    return s ? s.bytes[Number(gpa - s.guestPhysAddr)] : undefined;
  }

  writeByte(gpa: bigint, value: number): boolean {
    const s = this.slotOf(gpa);
    if (!s) return false;
    s.bytes[Number(gpa - s.guestPhysAddr)] = value & 0xff;
    return true;
  }

  /** Little-endian u64 at `gpa`, or undefined when any byte is unbacked. */
  readU64(gpa: bigint): bigint | undefined {
    let v = 0n;
    for (let k = 0; k < 8; k++) {
      const b = this.readByte(gpa + BigInt(k));
      if (b === undefined) return undefined;
      v |= BigInt(b) << BigInt(8 * k);
    }
    return v;
  }
}
