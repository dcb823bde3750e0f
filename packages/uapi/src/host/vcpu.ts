import type { KvmDebugregs, KvmFpu, KvmRegs, KvmSregs, KvmVcpuEvents, SyncRegsAccess, Vcpu, VcpuGetIoctl } from "../api.js";
import { KVM_EXIT } from "../exit-reasons.js";
import { KvmError } from "../errors.js";
import { decodeStruct, encodeStruct } from "../structs/codec.js";
import {
  checkCpuidBuffer,
  decodeKvmCpuid2,
  decodeKvmMsrs,
  encodeKvmCpuid2,
  getIntoSize,
  KVM_MAX_CPUID_ENTRIES,
  kvmCpuid2Size,
  encodeKvmMsrs,
  KVM_XSAVE_REGION_SIZE,
  type KvmCpuidEntry2,
  type KvmMsrEntry,
} from "../structs/flexible.js";
import {
  KvmRunReader,
  readDirtyRegs,
  readSyncRegs,
  readValidRegs,
  writeDirtyRegs,
  writeSyncRegs,
  writeValidRegs,
  type KvmExit,
  type KvmSyncRegs,
} from "../structs/kvm-run.js";
import { decodeKvmXcrs, encodeKvmXcrs, type KvmXcrs } from "../structs/kvm-xcrs.js";
import type { StructName, StructValue } from "../structs/layout.js";
import { KVM_STRUCTS } from "../structs/layout.js";
import { closeAll } from "./close-all.js";
import { KvmFd } from "./fd-ioctl.js";
import { MAP_SHARED, PROT_READ, PROT_WRITE, type Libc } from "./libc.js";
import { Mapping } from "./mapping.js";
import type { KvmIoctlName } from "../ioctls.js";

const EINTR = 4;

/** A real vCPU: its fd and its kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE bytes). */
export class HostVcpu implements Vcpu {
  readonly #fd: KvmFd;
  readonly #run: Mapping;
  readonly #exits: KvmRunReader;
  readonly #xsave2Size: () => number;
  readonly #onClose: (v: HostVcpu) => void;
  readonly syncRegs: SyncRegsAccess;

  /** Takes ownership of `fd`; closes it if the kvm_run mapping cannot be made. */
  constructor(libc: Libc, readonly id: number, fd: number, mmapSize: number, xsave2Size: () => number, onClose: (v: HostVcpu) => void) {
    this.#fd = new KvmFd(fd, `vcpu ${id}`, libc);
    try {
      this.#run = Mapping.map(libc, `kvm_run of vcpu ${id}`, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
    } catch (err) {
      closeAll([() => this.#fd.close()]);
      throw err;
    }
    try {
      // a mapping smaller than struct kvm_run is refused here, before anyone reads it
      this.#exits = new KvmRunReader(this.#run.bytes);
    } catch (err) {
      closeAll([() => this.#run.unmap(), () => this.#fd.close()]);
      throw err;
    }
    this.#xsave2Size = xsave2Size;
    this.#onClose = onClose;
    const run = () => this.#run.bytes;
    this.syncRegs = {
      get valid() {
        return readValidRegs(run());
      },
      set valid(mask: bigint) {
        writeValidRegs(run(), mask);
      },
      get dirty() {
        return readDirtyRegs(run());
      },
      set dirty(mask: bigint) {
        writeDirtyRegs(run(), mask);
      },
      read: (): KvmSyncRegs => readSyncRegs(run()),
      write: (parts: Partial<KvmSyncRegs>) => writeSyncRegs(run(), parts),
    };
  }

  /** The kvm_run mapping itself (for tools that read fields this API does not decode). */
  get kvmRun(): Uint8Array {
    return this.#run.bytes;
  }

  #get<N extends StructName>(ioctl: KvmIoctlName, name: N): StructValue<N> {
    const buf = new Uint8Array(KVM_STRUCTS[name].size);
    this.#fd.ioctlPtr(ioctl, buf);
    return decodeStruct(name, buf);
  }

  #set<N extends StructName>(ioctl: KvmIoctlName, name: N, value: StructValue<N>): void {
    this.#fd.ioctlPtr(ioctl, encodeStruct(name, value));
  }

  getRegs(): KvmRegs {
    return this.#get("KVM_GET_REGS", "kvm_regs");
  }
  setRegs(regs: KvmRegs): void {
    this.#set("KVM_SET_REGS", "kvm_regs", regs);
  }
  getSregs(): KvmSregs {
    return this.#get("KVM_GET_SREGS", "kvm_sregs");
  }
  setSregs(sregs: KvmSregs): void {
    this.#set("KVM_SET_SREGS", "kvm_sregs", sregs);
  }
  getFpu(): KvmFpu {
    return this.#get("KVM_GET_FPU", "kvm_fpu");
  }
  setFpu(fpu: KvmFpu): void {
    this.#set("KVM_SET_FPU", "kvm_fpu", fpu);
  }
  getDebugregs(): KvmDebugregs {
    return this.#get("KVM_GET_DEBUGREGS", "kvm_debugregs");
  }
  setDebugregs(d: KvmDebugregs): void {
    this.#set("KVM_SET_DEBUGREGS", "kvm_debugregs", d);
  }
  getVcpuEvents(): KvmVcpuEvents {
    return this.#get("KVM_GET_VCPU_EVENTS", "kvm_vcpu_events");
  }
  setVcpuEvents(e: KvmVcpuEvents): void {
    this.#set("KVM_SET_VCPU_EVENTS", "kvm_vcpu_events", e);
  }

  getXsave(): Uint8Array {
    const buf = new Uint8Array(KVM_XSAVE_REGION_SIZE);
    this.#fd.ioctlPtr("KVM_GET_XSAVE", buf);
    return buf;
  }

  getXsave2(size?: number): Uint8Array {
    // KVM writes KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) bytes; a smaller buffer would be overrun
    const want = size ?? Math.max(this.#xsave2Size(), KVM_XSAVE_REGION_SIZE);
    if (!Number.isSafeInteger(want) || want < KVM_XSAVE_REGION_SIZE) {
      throw new KvmError(`KVM_GET_XSAVE2: size ${want} below ${KVM_XSAVE_REGION_SIZE}`, 22, "bad-input");
    }
    const buf = new Uint8Array(want);
    this.#fd.ioctlPtr("KVM_GET_XSAVE2", buf);
    return buf;
  }

  setXsave(image: Uint8Array): void {
    if (!(image instanceof Uint8Array) || image.byteLength < KVM_XSAVE_REGION_SIZE) {
      throw new KvmError(`KVM_SET_XSAVE: image must be at least ${KVM_XSAVE_REGION_SIZE} bytes`, 22, "bad-input");
    }
    // KVM reads the KVM_CAP_XSAVE2 size: hand it a copy padded to that size so it never reads past our buffer
    const size = Math.max(image.byteLength, this.#xsave2Size());
    const buf = new Uint8Array(size);
    buf.set(image);
    this.#fd.ioctlPtr("KVM_SET_XSAVE", buf);
  }

  getXcrs(): KvmXcrs {
    const buf = new Uint8Array(KVM_STRUCTS.kvm_xcrs.size);
    this.#fd.ioctlPtr("KVM_GET_XCRS", buf);
    return decodeKvmXcrs(buf);
  }
  setXcrs(xcrs: KvmXcrs): void {
    this.#fd.ioctlPtr("KVM_SET_XCRS", encodeKvmXcrs(xcrs));
  }

  setCpuid2(entries: readonly KvmCpuidEntry2[]): void {
    this.#fd.ioctlPtr("KVM_SET_CPUID2", encodeKvmCpuid2(entries));
  }

  getCpuid2(): KvmCpuidEntry2[] {
    // Entries prefilled with all-ones (no real entry looks like that): a 6.1 kernel writes the
    // entries of a successful KVM_GET_CPUID2 but leaves nent as the caller set it, so the count is
    // where the prefill starts
    const buf = encodeKvmCpuid2([], KVM_MAX_CPUID_ENTRIES);
    buf.fill(0xff, kvmCpuid2Size(0));
    this.#fd.ioctlPtr("KVM_GET_CPUID2", buf);
    let n = new DataView(buf.buffer).getUint32(0, true);
    if (n === KVM_MAX_CPUID_ENTRIES) {
      n = 0;
      while (n < KVM_MAX_CPUID_ENTRIES && !buf.subarray(kvmCpuid2Size(n), kvmCpuid2Size(n + 1)).every((b) => b === 0xff)) n++;
    }
    new DataView(buf.buffer).setUint32(0, n, true);
    return decodeKvmCpuid2(buf.subarray(0, kvmCpuid2Size(n)));
  }

  getCpuid2Into(buf: Uint8Array): void {
    checkCpuidBuffer("KVM_GET_CPUID2", buf);
    this.#fd.ioctlPtr("KVM_GET_CPUID2", buf);
  }

  getInto(ioctl: VcpuGetIoctl, buf: Uint8Array): void {
    const need = getIntoSize(ioctl, this.#xsave2Size);
    if (buf.byteLength < need) throw new KvmError(`${ioctl}: KVM writes ${need} bytes, the buffer has ${buf.byteLength}`, 22, "bad-input");
    this.#fd.ioctlPtr(ioctl, buf);
  }

  getMsrs(indices: readonly number[]): KvmMsrEntry[] {
    const buf = encodeKvmMsrs(indices.map((index) => ({ index, reserved: 0, data: 0n })));
    const n = this.#fd.ioctlPtr("KVM_GET_MSRS", buf);
    return decodeKvmMsrs(buf, n);
  }
  setMsrs(entries: readonly KvmMsrEntry[]): number {
    return this.#fd.ioctlPtr("KVM_SET_MSRS", encodeKvmMsrs(entries));
  }

  run(): KvmExit {
    // after close() the reader's view points at unmapped memory: refuse before touching it
    if (!this.#run.mapped) throw new KvmError(`${this.#run.what} is unmapped`, 14 /* EFAULT */, "internal");
    try {
      this.#fd.ioctlInt("KVM_RUN");
    } catch (err) {
      // A signal (or immediate_exit) ends KVM_RUN with EINTR and exit_reason KVM_EXIT_INTR: an exit, not a failure
      if (err instanceof KvmError && err.errno === EINTR) return { kind: "intr", exitReason: KVM_EXIT.INTR };
      throw err;
    }
    return this.#exits.exit();
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  close(): void {
    if (this.#fd.closed && !this.#run.mapped) return;
    closeAll([() => this.#run.unmap(), () => this.#fd.close(), () => this.#onClose(this)]);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
