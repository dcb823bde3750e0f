import {
  createVcpu,
  CPUID_FEATURE,
  cpuidLookup,
  hostHasXsave,
  kvmCheckSyncRegs,
  kvmGetRegs,
  kvmGetXcrs,
  kvmGetXsave,
  kvmSetRegs,
  kvmSetXcrs,
  kvmSetXsave,
  markAvailable,
  Tag,
  type CpuidEntry,
  type UapiResult,
  type VcpuIoctlCtx,
  type VcpuState,
  XFEATURE_MASK_FPSSE,
} from "@kvmx/core";
import type { KvmDebugregs, KvmFpu, KvmRegs, KvmSregs, KvmVcpuEvents, SyncRegsAccess, Vcpu, VcpuGetIoctl } from "../api.js";
import { ERRNO, type ErrnoName } from "../errno.js";
import { KvmError } from "../errors.js";
import { KVM_EXIT, KVM_EXIT_IO_OUT } from "../exit-reasons.js";
import { writesCallerData, type KvmIoctlName } from "../ioctls.js";
import { decodeStruct, encodeStruct, encodeStructInto, zeroStruct } from "../structs/codec.js";
import { checkCpuidBuffer, getIntoSize, KVM_XSAVE_REGION_SIZE, kvmCpuid2Size, type KvmCpuidEntry2, type KvmMsrEntry } from "../structs/flexible.js";
import {
  decodeKvmExit,
  readDirtyRegs,
  readSyncRegs,
  readValidRegs,
  writeDirtyRegs,
  writeSyncRegs,
  writeValidRegs,
  type KvmExit,
  type KvmSyncRegs,
} from "../structs/kvm-run.js";
import { encodeKvmXcrs, type KvmXcrs } from "../structs/kvm-xcrs.js";
import { KVM_RUN_EXIT_UNION_OFFSET, KVM_STRUCTS, type StructName, type StructValue } from "../structs/layout.js";
import { KVM_SYNC_X86_EVENTS, KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from "../sync-regs.js";
import type { GuestPhysSpace } from "./guest-memory.js";
import { guestMode, runGuest, type GuestRunTarget, type GuestStop } from "./guest-run.js";
import type { ResolvedModelConfig } from "./model-config.js";
import { runtimeCpuid } from "./cpuid-runtime.js";
import { FxsaveArea } from "./fxsave-area.js";
import { resetDebugregs, resetSregs, RESET_RDX_NO_CPUID } from "./vcpu-reset.js";
import { kernelSeries } from "./kernel-release.js";
import { SEGMENT_NAMES, svmStoreSegment, svmViewSegment, validApicBase, validSregs } from "./sregs-rules.js";
import { VcpuEventState } from "./vcpu-events.js";

/** KVM_PIO_PAGE_OFFSET: the page of the vcpu mapping where KVM puts port I/O data. */
const PIO_DATA_OFFSET = 4096;
/** KVM_MAX_CPUID_ENTRIES */
const KVM_MAX_CPUID_ENTRIES = 256;
const CR4_OSXSAVE = 1n << 18n;
const EFER_LMA = 1n << 10n;
const RUN_OFFSET = Object.fromEntries(KVM_STRUCTS.kvm_run.fields.map((f) => [f.name, f.offset])) as Record<string, number>;

const copyOf = <N extends StructName>(name: N, v: StructValue<N>): StructValue<N> => decodeStruct(name, encodeStruct(name, v));

/**
 * A simulated vCPU fd: the state ioctls are core's vCPU operations (core/src/kvm/uapi-ops.ts — x86.c's
 * rules, stated once there) with kvm.h structs and errno on top; KVM_RUN runs guest code from guest
 * memory (guest-run.ts); kvm_run is a real byte buffer laid out as in kvm.h, so exits and sync regs go
 * through the same codecs as on the real device.
 */
export class ModelVcpu implements Vcpu, GuestRunTarget {
  readonly vcpu: VcpuState;
  sregs: KvmSregs;
  guestCpuid: CpuidEntry[] = [];
  readonly kvmRun: Uint8Array;
  readonly syncRegs: SyncRegsAccess;
  /** Kernel WARNs the model hit (e.g. cache_reg on a register the model never evicts). */
  readonly warnings: string[] = [];
  /** Why the last KVM_EXIT_INTERNAL_ERROR happened, in words (the real kernel only gives numbers). */
  lastInternalError: string | undefined;
  /** The raw legacy region KVM_GET/SET_FPU read and write (fxsave-area.ts). */
  readonly fxsave = new FxsaveArea();
  /** An OUT exit KVM completes on the next KVM_RUN (complete_fast_pio_out): RIP then skips the instruction. */
  #pendingPio: { linearRip: bigint; length: number } | undefined;
  #debugregs: KvmDebugregs = resetDebugregs();
  /** Exceptions, interrupts, NMIs, the interrupt shadow as KVM keeps them (vcpu-events.ts). */
  readonly events: VcpuEventState;
  /** The vCPU entered the guest at least once (KVM's last_vmentry_cpu != -1). */
  #ran = false;
  #closed = false;

  constructor(
    readonly id: number,
    readonly cfg: ResolvedModelConfig,
    readonly mem: GuestPhysSpace,
    mmapSize: number,
    readonly xsave2Size: number,
    readonly onClose: (v: ModelVcpu) => void,
  ) {
    const home = cfg.design.egprHome;
    const v = createVcpu({
      id,
      design: cfg.design.name,
      egprsInRegs: home === "regs",
      fpstateHasApx: home === "fpstate" && cfg.cpuApx,
      // no KVM_SET_CPUID2 yet: guest-supported XCR0 is empty, so only XCR0 = FP is accepted (docs/facts.md#supported-xcr0)
      cpuid: { xcr0Mask: 0n, apx: false },
      protectedState: home === "hardware",
    });
    if (cfg.backend.hasProtectedState(v)) v.protectedState = true;
    this.vcpu = v;
    this.events = new VcpuEventState(cfg.vendor);
    this.sregs = resetSregs(id === 0, cfg.vendor);
    this.#applySregs(this.sregs);
    this.vcpu.rip = 0xfff0n;
    // kvm_vcpu_reset: RDX = CPUID.1:EAX, or 0x600 before any KVM_SET_CPUID2 (kvm_vcpu_reset)
    if (!this.vcpu.protectedState) this.setRegs({ ...this.getRegs(), rdx: RESET_RDX_NO_CPUID });
    this.kvmRun = new Uint8Array(mmapSize);
    const run = this.kvmRun;
    this.syncRegs = {
      get valid() {
        return readValidRegs(run);
      },
      set valid(mask: bigint) {
        writeValidRegs(run, mask);
      },
      get dirty() {
        return readDirtyRegs(run);
      },
      set dirty(mask: bigint) {
        writeDirtyRegs(run, mask);
      },
      read: (): KvmSyncRegs => readSyncRegs(run),
      write: (parts: Partial<KvmSyncRegs>) => writeSyncRegs(run, parts),
    };
  }

  /** The context core's vCPU operations take: this vCPU, its (never-evicted) register cache, the KVM caps. */
  ioctlCtx(): VcpuIoctlCtx {
    const v = this.vcpu;
    return {
      vcpu: v,
      // The model keeps every register available in regs[]: a cache_reg call is a kernel WARN, as for a TD.
      cacheReg: (reg) => {
        this.warnings.push(`cache_reg(${v.layout.name(reg)}) on the simulated vCPU`);
        markAvailable(v, reg);
      },
      warn: (m) => void this.warnings.push(m),
      guestTag: Tag.guest(this.id),
      profile: this.cfg.profile,
      supportedXcr0: this.cfg.supportedXcr0,
      // what KVM_GET_XSAVE reports in bytes 464..471: the host kernel's user xfeatures
      hostXcr0: this.cfg.hostUserXfeatures,
      options: this.cfg.options,
      egprHome: this.cfg.design.egprHome,
      protectedState: v.protectedState,
    };
  }

  #check(): void {
    if (this.#closed) throw new KvmError(`vcpu ${this.id} is closed`, ERRNO.EBADF, "internal");
  }

  #fail(ioctl: KvmIoctlName, errno: ErrnoName): never {
    throw KvmError.fromIoctl(ioctl, ERRNO[errno], writesCallerData(ioctl));
  }

  #unwrap<T>(ioctl: KvmIoctlName, r: UapiResult<T>): T {
    if (!r.ok) this.#fail(ioctl, r.errno);
    return r.value;
  }

  #protected(ioctl: KvmIoctlName): void {
    if (this.vcpu.protectedState) this.#fail(ioctl, "EINVAL");
  }

  getRegs(): KvmRegs {
    this.#check();
    return { ...this.#unwrap("KVM_GET_REGS", kvmGetRegs(this.ioctlCtx())) };
  }

  setRegs(regs: KvmRegs): void {
    this.#check();
    const checked = copyOf("kvm_regs", regs);
    this.#unwrap("KVM_SET_REGS", kvmSetRegs(this.ioctlCtx(), checked, Tag.guest(this.id)));
  }

  /**
   * __get_sregs: segments as the vendor reports them (svm_get_segment on AMD), descriptor tables
   * without padding, and the interrupt bitmap holding the injected (non-soft) interrupt.
   */
  getSregs(): KvmSregs {
    this.#check();
    this.#protected("KVM_GET_SREGS");
    const s = copyOf("kvm_sregs", this.sregs);
    if (this.cfg.vendor === "amd") {
      const cpl = this.sregs.ss.dpl;
      for (const name of SEGMENT_NAMES) s[name] = svmViewSegment(this.sregs[name], name, cpl);
    }
    s.gdt = { ...s.gdt, padding: [0, 0, 0] };
    s.idt = { ...s.idt, padding: [0, 0, 0] };
    s.interrupt_bitmap = [0n, 0n, 0n, 0n];
    const irq = this.events.interrupt;
    if (irq.injected && !irq.soft) s.interrupt_bitmap[irq.nr >> 6] = 1n << BigInt(irq.nr & 63);
    return s;
  }

  /**
   * __set_sregs: kvm_is_valid_sregs and the APIC base checks (EINVAL), then the state as the vendor
   * stores it (svm_set_segment on AMD), CR8 unless it has reserved bits (kvm_set_cr8's error is
   * ignored there), and the first interrupt of the bitmap queued as the injected interrupt.
   */
  setSregs(sregs: KvmSregs): void {
    this.#check();
    this.#protected("KVM_SET_SREGS");
    const s = copyOf("kvm_sregs", sregs);
    const v61 = kernelSeries(this.cfg.kernel.release).series === "6.1";
    if (!validSregs(s, this.guestCpuid, this.cfg.vendor, !v61) || !validApicBase(s.apic_base, this.guestCpuid)) this.#fail("KVM_SET_SREGS", "EINVAL");
    if (this.cfg.vendor === "amd") for (const name of SEGMENT_NAMES) s[name] = svmStoreSegment(s[name]);
    if ((s.cr8 & ~0xfn) !== 0n) s.cr8 = this.sregs.cr8;
    const bitmap = s.interrupt_bitmap;
    s.interrupt_bitmap = [0n, 0n, 0n, 0n];
    this.sregs = s;
    this.#applySregs(s);
    const word = bitmap.findIndex((w) => w !== 0n);
    if (word >= 0) {
      const w = bitmap[word]!;
      let bit = 0;
      while (((w >> BigInt(bit)) & 1n) === 0n) bit++;
      this.events.interrupt = { injected: true, nr: word * 64 + bit, soft: false };
    }
  }

  /** What the vCPU layer derives from sregs: cached CRs, CR4.OSXSAVE, 64-bit mode (EFER.LMA && CS.L). */
  #applySregs(s: KvmSregs): void {
    const v = this.vcpu;
    v.cr0 = s.cr0;
    v.cr3 = s.cr3;
    v.cr4 = s.cr4;
    v.cr4Osxsave = (s.cr4 & CR4_OSXSAVE) !== 0n;
    v.longMode = (s.efer & EFER_LMA) !== 0n && s.cs.l === 1;
  }

  getFpu(): KvmFpu {
    this.#check();
    this.#protected("KVM_GET_FPU");
    return this.fxsave.toKvmFpu();
  }

  setFpu(fpu: KvmFpu): void {
    this.#check();
    this.#protected("KVM_SET_FPU");
    this.fxsave.setFromKvmFpu(copyOf("kvm_fpu", fpu));
    // the same bytes reach core's fpstate with XSTATE_BV as it was (KVM_SET_FPU never touches the header)
    const b = this.#image("KVM_SET_FPU");
    b.set(this.fxsave.bytes.subarray(0, 24), 0);
    b.set(this.fxsave.bytes.subarray(32, 416), 32);
    this.#unwrap("KVM_SET_FPU", kvmSetXsave(this.ioctlCtx(), b, Tag.guest(this.id)));
  }

  #image(ioctl: KvmIoctlName): Uint8Array {
    return this.#unwrap(ioctl, kvmGetXsave(this.ioctlCtx(), this.xsave2Size)).image.bytes;
  }

  getXsave(): Uint8Array {
    this.#check();
    return this.#unwrap("KVM_GET_XSAVE", kvmGetXsave(this.ioctlCtx(), KVM_XSAVE_REGION_SIZE)).image.bytes.slice();
  }

  getXsave2(size?: number): Uint8Array {
    this.#check();
    const want = size ?? this.xsave2Size;
    if (!Number.isSafeInteger(want) || want < KVM_XSAVE_REGION_SIZE) {
      throw new KvmError(`KVM_GET_XSAVE2: size ${want} below ${KVM_XSAVE_REGION_SIZE}`, ERRNO.EINVAL, "bad-input");
    }
    // KVM fills KVM_CAP_XSAVE2 bytes whatever the buffer; a larger caller buffer keeps zeros past that
    const img = this.#unwrap("KVM_GET_XSAVE2", kvmGetXsave(this.ioctlCtx(), this.xsave2Size)).image.bytes;
    const out = new Uint8Array(want);
    out.set(img.subarray(0, Math.min(want, img.length)));
    return out;
  }

  setXsave(image: Uint8Array): void {
    this.#check();
    if (!(image instanceof Uint8Array) || image.byteLength < KVM_XSAVE_REGION_SIZE) {
      throw new KvmError(`KVM_SET_XSAVE: image must be at least ${KVM_XSAVE_REGION_SIZE} bytes`, ERRNO.EINVAL, "bad-input");
    }
    // KVM reads KVM_CAP_XSAVE2 bytes (the host binding pads the same way)
    const buf = new Uint8Array(Math.max(image.byteLength, this.xsave2Size));
    buf.set(image);
    const ctx = this.ioctlCtx();
    this.#unwrap("KVM_SET_XSAVE", kvmSetXsave(ctx, buf, Tag.guest(this.id)));
    // without XSAVE the whole FXSAVE area is taken, whatever XSTATE_BV says
    this.fxsave.setFromXsave(buf, hostHasXsave(ctx.profile) ? new DataView(buf.buffer).getBigUint64(512, true) : XFEATURE_MASK_FPSSE);
  }

  getXcrs(): KvmXcrs {
    this.#check();
    const x = this.#unwrap("KVM_GET_XCRS", kvmGetXcrs(this.ioctlCtx()));
    return { flags: x.flags, xcrs: x.xcrs.slice(0, x.nrXcrs).map((e) => ({ xcr: e.xcr, reserved: 0, value: e.value })) };
  }

  setXcrs(xcrs: KvmXcrs): void {
    this.#check();
    encodeKvmXcrs(xcrs); // the same input checks the real binding applies before the ioctl
    const r = kvmSetXcrs(this.ioctlCtx(), {
      nrXcrs: xcrs.xcrs.length,
      flags: xcrs.flags,
      xcrs: xcrs.xcrs.map((e) => ({ xcr: e.xcr, value: e.value })),
    });
    this.#unwrap("KVM_SET_XCRS", r);
  }

  setCpuid2(entries: readonly KvmCpuidEntry2[]): void {
    this.#check();
    if (entries.length > KVM_MAX_CPUID_ENTRIES) this.#fail("KVM_SET_CPUID2", "E2BIG");
    const next: CpuidEntry[] = entries.map((e) => copyOf("kvm_cpuid_entry2", e));
    // kvm_set_cpuid: once the vCPU has entered the guest only the table it has is accepted, compared
    // after the runtime fields of both are updated (kvm_cpuid_check_equal: EINVAL)
    if (this.#ran) {
      const fields = (t: readonly CpuidEntry[]) => JSON.stringify(this.#withRuntime(t).map(({ function: f, index, flags, eax, ebx, ecx, edx }) => [f, index, flags, eax, ebx, ecx, edx]));
      if (fields(next) !== fields(this.guestCpuid)) this.#fail("KVM_SET_CPUID2", "EINVAL");
      return;
    }
    this.guestCpuid = next;
    const d0 = cpuidLookup(next, 0xd, 0);
    const apx = CPUID_FEATURE.APX_F;
    this.vcpu.cpuid = {
      xcr0Mask: (BigInt(d0.edx >>> 0) << 32n) | BigInt(d0.eax >>> 0),
      apx: ((cpuidLookup(next, apx.leaf, apx.subleaf)[apx.reg] >>> apx.bit) & 1) === 1,
    };
  }

  getCpuid2(): KvmCpuidEntry2[] {
    this.#check();
    return this.runtimeCpuid().map((e) => ({ ...e, padding: [0, 0, 0] }));
  }

  getCpuid2Into(buf: Uint8Array): void {
    this.#check();
    checkCpuidBuffer("KVM_GET_CPUID2", buf);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const entries = this.getCpuid2();
    // kvm_vcpu_ioctl_get_cpuid2: too small a nent is E2BIG and nothing is written back; 6.1 writes
    // the entries but never the nent of a successful call (the caller's stays)
    if (dv.getUint32(0, true) < entries.length) this.#fail("KVM_GET_CPUID2", "E2BIG");
    entries.forEach((e, i) => encodeStructInto("kvm_cpuid_entry2", e, buf, kvmCpuid2Size(i)));
    if (kernelSeries(this.cfg.kernel.release).series !== "6.1") dv.setUint32(0, entries.length, true);
  }

  getInto(ioctl: VcpuGetIoctl, buf: Uint8Array): void {
    this.#check();
    const need = getIntoSize(ioctl, () => this.xsave2Size);
    if (buf.byteLength < need) throw new KvmError(`${ioctl}: KVM writes ${need} bytes, the buffer has ${buf.byteLength}`, ERRNO.EINVAL, "bad-input");
    // what the ioctl copies to userspace: the whole struct (or the KVM_CAP_XSAVE2 size), from offset 0
    const bytes = ((): Uint8Array => {
      switch (ioctl) {
        case "KVM_GET_REGS":
          return encodeStruct("kvm_regs", this.getRegs());
        case "KVM_GET_SREGS":
          return encodeStruct("kvm_sregs", this.getSregs());
        case "KVM_GET_FPU":
          return encodeStruct("kvm_fpu", this.getFpu());
        case "KVM_GET_XSAVE":
          return this.getXsave();
        case "KVM_GET_XSAVE2":
          return this.getXsave2(need);
        case "KVM_GET_XCRS":
          return encodeKvmXcrs(this.getXcrs());
        case "KVM_GET_VCPU_EVENTS":
          return encodeStruct("kvm_vcpu_events", this.getVcpuEvents());
        case "KVM_GET_DEBUGREGS":
          return encodeStruct("kvm_debugregs", this.getDebugregs());
      }
    })();
    buf.set(bytes.subarray(0, need), 0);
  }

  getDebugregs(): KvmDebugregs {
    this.#check();
    return copyOf("kvm_debugregs", this.#debugregs);
  }

  setDebugregs(d: KvmDebugregs): void {
    this.#check();
    const c = copyOf("kvm_debugregs", d);
    // kvm_vcpu_ioctl_x86_set_debugregs: flags must be 0, DR6/DR7 upper halves must be 0
    if (c.flags !== 0n || c.dr6 >> 32n !== 0n || c.dr7 >> 32n !== 0n) this.#fail("KVM_SET_DEBUGREGS", "EINVAL");
    this.#debugregs = c;
  }

  getVcpuEvents(): KvmVcpuEvents {
    this.#check();
    // 6.1 reports whether an NMI is pending, later kernels how many
    return this.events.get(kernelSeries(this.cfg.kernel.release).series !== "6.1");
  }

  setVcpuEvents(e: KvmVcpuEvents): void {
    this.#check();
    const errno = this.events.set(copyOf("kvm_vcpu_events", e));
    if (errno) this.#fail("KVM_SET_VCPU_EVENTS", errno);
  }

  /** The model knows the MSRs its guests or userspace wrote; KVM_GET_MSRS stops at the first other one. */
  getMsrs(indices: readonly number[]): KvmMsrEntry[] {
    this.#check();
    const out: KvmMsrEntry[] = [];
    for (const index of indices) {
      const data = this.vcpu.msrs.get(index);
      if (data === undefined) break;
      out.push({ index, reserved: 0, data });
    }
    return out;
  }

  setMsrs(entries: readonly KvmMsrEntry[]): number {
    this.#check();
    for (const e of entries) this.vcpu.msrs.set(e.index, e.data);
    return entries.length;
  }

  run(): KvmExit {
    this.#check();
    const run = this.kvmRun;
    // sync_regs: any class outside REGS|SREGS|EVENTS (all of them for protected state) fails KVM_RUN
    const valid = readValidRegs(run);
    const dirty = readDirtyRegs(run);
    const tooWide = (m: bigint) => (m >> 32n !== 0n ? 0xffff_ffff : Number(m));
    // kvm_arch_vcpu_ioctl_run: every way out, the EINVAL ones included, stores the valid classes
    try {
      this.#unwrap("KVM_RUN", kvmCheckSyncRegs(tooWide(valid), tooWide(dirty), this.vcpu.protectedState));
      if (dirty !== 0n) {
        // sync_regs: each class is loaded, then its dirty bit cleared
        const s = readSyncRegs(run);
        if (dirty & KVM_SYNC_X86_REGS) {
          this.setRegs(s.regs);
          writeDirtyRegs(run, readDirtyRegs(run) & ~KVM_SYNC_X86_REGS);
        }
        if (dirty & KVM_SYNC_X86_SREGS) {
          this.setSregs(s.sregs);
          writeDirtyRegs(run, readDirtyRegs(run) & ~KVM_SYNC_X86_SREGS);
        }
        if (dirty & KVM_SYNC_X86_EVENTS) {
          this.setVcpuEvents(s.events);
          writeDirtyRegs(run, readDirtyRegs(run) & ~KVM_SYNC_X86_EVENTS);
        }
      }
      // no in-kernel local APIC: CR8 comes from kvm_run.cr8 on every KVM_RUN (kvm_set_cr8: reserved bits EINVAL)
      const cr8 = new DataView(run.buffer).getBigUint64(RUN_OFFSET.cr8!, true);
      if ((cr8 & ~0xfn) !== 0n) this.#fail("KVM_RUN", "EINVAL");
      this.sregs = { ...this.sregs, cr8 };
    } catch (err) {
      if (err instanceof KvmError) this.#postRun(valid);
      throw err;
    }
    this.#completeUserspaceIo();
    let stop: GuestStop;
    if (run[RUN_OFFSET.immediate_exit!] !== 0) {
      this.#writeExit(KVM_EXIT.INTR);
      this.#postRun(valid);
      return { kind: "intr", exitReason: KVM_EXIT.INTR };
    }
    if (this.vcpu.protectedState) {
      stop = { kind: "internal-error", suberror: 1, reason: "the simulated device does not run protected guests" };
    } else {
      this.#ran = true;
      this.fxsave.loadForRun(new DataView(this.#image("KVM_RUN").buffer).getBigUint64(512, true));
      stop = runGuest(this);
    }
    this.#recordStop(stop);
    this.#postRun(valid);
    return decodeKvmExit(run);
  }

  /** store_regs for the valid classes, then post_kvm_run_save: kvm_run.if_flag, cr8 and apic_base. */
  #postRun(valid: bigint): void {
    this.#storeSyncRegs(valid);
    const dv = new DataView(this.kvmRun.buffer);
    this.kvmRun[RUN_OFFSET.if_flag!] = (this.vcpu.rflags >> 9n) & 1n ? 1 : 0;
    dv.setBigUint64(RUN_OFFSET.cr8!, this.sregs.cr8, true);
    dv.setBigUint64(RUN_OFFSET.apic_base!, this.sregs.apic_base, true);
  }

  /**
   * The event KVM injects at this entry (inject_pending_event): an injected exception first, then an
   * injected NMI or interrupt, then a pending NMI while NMIs are unmasked (which masks them).
   */
  entryEvent(): { vector: number; errorCode?: number } | undefined {
    const ev = this.events;
    if (ev.exception.injected) {
      ev.exception.injected = false;
      return { vector: ev.exception.nr, ...(ev.exception.hasErrorCode ? { errorCode: ev.exception.errorCode } : {}) };
    }
    if (ev.nmi.injected || (ev.nmi.pending > 0 && !ev.nmi.masked)) {
      if (!ev.nmi.injected) ev.nmi.pending--;
      ev.nmi.injected = false;
      ev.nmi.masked = true;
      return { vector: 2 };
    }
    if (ev.interrupt.injected) {
      ev.interrupt.injected = false;
      return { vector: ev.interrupt.nr };
    }
    return undefined;
  }

  /** complete_fast_pio_out: skip the OUT unless userspace moved RIP meanwhile (kvm_is_linear_rip). */
  #completeUserspaceIo(): void {
    const pio = this.#pendingPio;
    this.#pendingPio = undefined;
    if (!pio) return;
    const regs = this.getRegs();
    if (this.#linearRip(regs.rip) !== pio.linearRip) return;
    this.setRegs({ ...regs, rip: BigInt.asUintN(64, regs.rip + BigInt(pio.length)) });
  }

  /** kvm_get_linear_rip: RIP in 64-bit mode, else (u32)(CS.base + RIP). */
  #linearRip(rip: bigint): bigint {
    return this.mode === "long64" ? rip : (this.sregs.cs.base + rip) & 0xffff_ffffn;
  }

  /** The CPUID table as KVM holds it now: KVM_SET_CPUID2's with kvm_update_cpuid_runtime applied. */
  runtimeCpuid(): CpuidEntry[] {
    return this.#withRuntime(this.guestCpuid);
  }

  #withRuntime(table: readonly CpuidEntry[]): CpuidEntry[] {
    return runtimeCpuid(table, { cr4: this.sregs.cr4, apicBase: this.sregs.apic_base, xcr0: this.vcpu.xcr0, profile: this.cfg.profile });
  }

  /** The guest's execution mode now (for tools and tests). */
  get mode() {
    return guestMode(this.sregs);
  }

  #writeExit(reason: number): void {
    new DataView(this.kvmRun.buffer).setUint32(RUN_OFFSET.exit_reason!, reason, true);
    this.kvmRun.fill(0, KVM_RUN_EXIT_UNION_OFFSET, KVM_RUN_EXIT_UNION_OFFSET + 256);
  }

  #recordStop(stop: GuestStop): void {
    const run = this.kvmRun;
    switch (stop.kind) {
      case "io":
        this.#writeExit(KVM_EXIT.IO);
        encodeStructInto("kvm_run_io", { direction: KVM_EXIT_IO_OUT, size: stop.size, port: stop.port, count: 1, data_offset: BigInt(PIO_DATA_OFFSET) }, run, KVM_RUN_EXIT_UNION_OFFSET);
        run.set(stop.data, PIO_DATA_OFFSET);
        this.#pendingPio = { linearRip: this.#linearRip(this.vcpu.rip), length: stop.length };
        return;
      case "hlt":
        this.#writeExit(KVM_EXIT.HLT);
        return;
      case "shutdown":
        this.warnings.push(stop.reason);
        this.#writeExit(KVM_EXIT.SHUTDOWN);
        return;
      case "internal-error": {
        this.#writeExit(KVM_EXIT.INTERNAL_ERROR);
        const data = new Array<bigint>(16).fill(0n);
        data[0] = this.vcpu.rip;
        encodeStructInto("kvm_run_internal", { suberror: stop.suberror, ndata: 1, data }, run, KVM_RUN_EXIT_UNION_OFFSET);
        this.lastInternalError = stop.reason;
        return;
      }
    }
  }


  /** store_regs: the valid classes KVM knows (never for protected state), whatever else `valid` holds. */
  #storeSyncRegs(valid: bigint): void {
    if (valid === 0n || this.vcpu.protectedState) return;
    const parts: Partial<KvmSyncRegs> = {};
    if (valid & KVM_SYNC_X86_REGS) parts.regs = this.getRegs();
    if (valid & KVM_SYNC_X86_SREGS) parts.sregs = this.getSregs();
    if (valid & KVM_SYNC_X86_EVENTS) parts.events = this.getVcpuEvents();
    writeSyncRegs(this.kvmRun, parts);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
