import { cpuidLookup, guestCpuidEntries, kvmXsave2Size, XFEATURE_MASK } from "@kvmx/core";
import type { CpuidKind, Kvm, KvmCap } from "../api.js";
import { encodeStructInto } from "../structs/codec.js";
import { checkCpuidBuffer, KVM_MAX_CPUID_ENTRIES, kvmCpuid2Size } from "../structs/flexible.js";
import { deviceAttr, emulatedCpuid } from "./kvm-cpuid-lists.js";
import { KVM_API_VERSION, KVM_CAP } from "../caps.js";
import { ERRNO } from "../errno.js";
import { KvmError } from "../errors.js";
import type { KvmCpuidEntry2 } from "../structs/flexible.js";
import { KVM_SYNC_X86_VALID_FIELDS } from "../sync-regs.js";
import { kernelCapability } from "./kernel-release.js";
import { resolveModelConfig, type ModelKvmConfig, type ResolvedModelConfig } from "./model-config.js";
import { ModelVm } from "./model-vm.js";

/** KVM_GET_VCPU_MMAP_SIZE on x86: kvm_run page + PIO data page + coalesced MMIO page. */
export const MODEL_VCPU_MMAP_SIZE = 3 * 4096;

/**
 * The simulated /dev/kvm: the same Kvm interface as the real binding (src/host), answered by the kvmx
 * model. Capabilities and KVM_GET_SUPPORTED_CPUID come from the CPU profile and the backend's
 * supported XCR0; vCPU ioctls are core's vCPU operations. Nothing of kvm_pvm's host quirks is
 * imitated (docs/facts.md#host-quirks): the diff harness names those instead (src/diff/host-quirks.ts).
 */
export class ModelKvm implements Kvm {
  readonly cfg: ResolvedModelConfig;
  readonly #vms = new Set<ModelVm>();
  #closed = false;

  constructor(config: ModelKvmConfig) {
    this.cfg = resolveModelConfig(config);
  }

  #check(): void {
    if (this.#closed) throw new KvmError("simulated /dev/kvm is closed", ERRNO.EBADF, "internal");
  }

  apiVersion(): number {
    this.#check();
    return KVM_API_VERSION;
  }

  /** KVM_CAP_XSAVE2: max(4096, standard size of the supported features) — core's kvmXsave2Size. */
  get xsave2Size(): number {
    return kvmXsave2Size({ profile: this.cfg.profile, supportedXcr0: this.cfg.supportedXcr0 });
  }

  checkExtension(cap: KvmCap): number {
    this.#check();
    const n = typeof cap === "number" ? cap : KVM_CAP[cap];
    // limits and version-dependent capabilities come from the kernel being modelled
    const fromKernel = kernelCapability(this.cfg.kernel, n);
    if (fromKernel !== undefined) return fromKernel;
    switch (n) {
      case KVM_CAP.USER_MEMORY:
      case KVM_CAP.EXT_CPUID:
      case KVM_CAP.VCPU_EVENTS:
      case KVM_CAP.DEBUGREGS:
      case KVM_CAP.XSAVE:
      case KVM_CAP.IMMEDIATE_EXIT:
        return 1;
      // boot_cpu_has(X86_FEATURE_XSAVE): KVM_GET/SET_XCRS need an XSAVE host
      case KVM_CAP.XCRS:
        return (cpuidLookup(this.cfg.profile.cpuid, 1, 0).ecx >>> 26) & 1;
      case KVM_CAP.SYNC_REGS:
        return Number(KVM_SYNC_X86_VALID_FIELDS);
      case KVM_CAP.XSAVE2:
        return this.xsave2Size;
      default:
        return 0;
    }
  }

  vcpuMmapSize(): number {
    this.#check();
    return MODEL_VCPU_MMAP_SIZE;
  }

  /** The profile's CPUID with leaf 0xD.0 narrowed to KVM-supported XCR0 and APX_F only where KVM supports APX. */
  getSupportedCpuid(): KvmCpuidEntry2[] {
    this.#check();
    const apx = (this.cfg.supportedXcr0 & XFEATURE_MASK.APX) !== 0n;
    return guestCpuidEntries(this.cfg.profile.cpuid, this.cfg.supportedXcr0, apx).map((e) => ({
      function: e.function,
      index: e.index,
      flags: e.flags,
      eax: e.eax >>> 0,
      ebx: e.ebx >>> 0,
      ecx: e.ecx >>> 0,
      edx: e.edx >>> 0,
      padding: [0, 0, 0],
    }));
  }

  getEmulatedCpuid(): KvmCpuidEntry2[] {
    this.#check();
    const r = emulatedCpuid(this.getSupportedCpuid(), KVM_MAX_CPUID_ENTRIES);
    if (!r.ok) throw KvmError.fromIoctl("KVM_GET_EMULATED_CPUID", ERRNO.E2BIG, false);
    return r.entries;
  }

  getCpuidInto(kind: CpuidKind, buf: Uint8Array): void {
    this.#check();
    const ioctl = kind === "supported" ? "KVM_GET_SUPPORTED_CPUID" : "KVM_GET_EMULATED_CPUID";
    checkCpuidBuffer(ioctl, buf);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    // kvm_dev_ioctl_get_cpuid: nent < 1 is E2BIG; more than KVM_MAX_CPUID_ENTRIES is clamped
    const asked = dv.getUint32(0, true);
    if (asked < 1) throw KvmError.fromIoctl(ioctl, ERRNO.E2BIG, false);
    const room = Math.min(asked, KVM_MAX_CPUID_ENTRIES);
    let entries: KvmCpuidEntry2[];
    if (kind === "emulated") {
      // sanity_check_entries: the padding of every entry the caller offers must be zero
      for (let i = 0; i < room; i++) {
        const at = kvmCpuid2Size(i) + 28;
        if (dv.getUint32(at, true) | dv.getUint32(at + 4, true) | dv.getUint32(at + 8, true)) throw KvmError.fromIoctl(ioctl, ERRNO.EINVAL, false);
      }
      const r = emulatedCpuid(this.getSupportedCpuid(), room);
      if (!r.ok) throw KvmError.fromIoctl(ioctl, ERRNO.E2BIG, false);
      entries = r.entries;
    } else {
      entries = this.getSupportedCpuid();
      if (entries.length > room) throw KvmError.fromIoctl(ioctl, ERRNO.E2BIG, false);
    }
    // on success: the header's nent and exactly that many entries, nothing after them
    dv.setUint32(0, entries.length, true);
    entries.forEach((e, i) => encodeStructInto("kvm_cpuid_entry2", e, buf, kvmCpuid2Size(i)));
  }

  getDeviceAttr(group: number, attr: bigint): bigint {
    this.#check();
    const v = deviceAttr(this.cfg, group, attr);
    if (v === undefined) throw KvmError.fromIoctl("KVM_GET_DEVICE_ATTR", ERRNO.ENXIO, true);
    return v;
  }

  hasDeviceAttr(group: number, attr: bigint): boolean {
    this.#check();
    return deviceAttr(this.cfg, group, attr) !== undefined;
  }

  createVm(): ModelVm {
    this.#check();
    const vm = new ModelVm(this.cfg, MODEL_VCPU_MMAP_SIZE, this.xsave2Size, (c) => this.checkExtension(c), (v) => this.#vms.delete(v));
    this.#vms.add(vm);
    return vm;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    for (const vm of [...this.#vms]) vm.close();
    this.#closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Opens a simulated /dev/kvm over the model. */
export function openModelKvm(config: ModelKvmConfig): ModelKvm {
  return new ModelKvm(config);
}
