import { KvmError } from "../errors.js";
import { MAP_FAILED, type Libc } from "./libc.js";

/**
 * An mmap'ed range owned by one object. `bytes` is a view straight onto the mapping; after unmap()
 * it throws instead of touching freed memory.
 */
export class Mapping {
  #addr: bigint;
  #bytes: Uint8Array | undefined;

  private constructor(
    addr: bigint,
    readonly length: number,
    readonly what: string,
    readonly libc: Libc,
  ) {
    this.#addr = addr;
    this.#bytes = new Uint8Array(libc.view(addr, length));
  }

  static map(libc: Libc, what: string, length: number, prot: number, flags: number, fd: number): Mapping {
    const addr = libc.mmap(null, length, prot, flags, fd, 0);
    if (addr === MAP_FAILED || addr === 0n) throw new KvmError(`mmap ${what}`, libc.errno(), "internal");
    try {
      return new Mapping(addr, length, what, libc);
    } catch (err) {
      libc.munmap(addr, length);
      throw err;
    }
  }

  get address(): bigint {
    if (this.#bytes === undefined) throw new KvmError(`${this.what} is unmapped`, 14 /* EFAULT */, "internal");
    return this.#addr;
  }

  get bytes(): Uint8Array {
    if (this.#bytes === undefined) throw new KvmError(`${this.what} is unmapped`, 14 /* EFAULT */, "internal");
    return this.#bytes;
  }

  get mapped(): boolean {
    return this.#bytes !== undefined;
  }

  unmap(): void {
    if (this.#bytes === undefined) return;
    this.#bytes = undefined;
    if (this.libc.munmap(this.#addr, this.length) < 0) throw new KvmError(`munmap ${this.what}`, this.libc.errno(), "internal");
  }
}
