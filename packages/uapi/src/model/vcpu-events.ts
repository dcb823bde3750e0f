import { zeroStruct } from "../structs/codec.js";
import type { KvmVcpuEvents } from "../api.js";

/**
 * The event state behind KVM_GET/SET_VCPU_EVENTS (kvm_vcpu_ioctl_x86_get/set_vcpu_events): the
 * queued exception, the injected interrupt, NMIs (injected, pending, masked), the interrupt shadow
 * and SMM — kept as KVM keeps them, so what KVM normalises on the way in and out is visible.
 */
export const VCPU_EVENT_FLAGS = { NMI_PENDING: 0x1, SIPI_VECTOR: 0x2, SHADOW: 0x4, SMM: 0x8, PAYLOAD: 0x10, TRIPLE_FAULT: 0x20 } as const;
const KNOWN_FLAGS = 0x3f;
const NMI_VECTOR = 2;
/** #BP and #OF are software exceptions: KVM does not report them (it cannot report their length). */
const isSoft = (nr: number) => nr === 3 || nr === 4;

export class VcpuEventState {
  exception = { injected: false, pending: false, nr: 0, hasErrorCode: false, errorCode: 0, hasPayload: false, payload: 0n };
  interrupt = { injected: false, nr: 0, soft: false };
  /** KVM_X86_SHADOW_INT_* bits the vendor keeps (SVM: one bit, reported as both). */
  shadow = 0;
  nmi = { injected: false, pending: 0, masked: false };
  smi = { smm: false, pending: false, insideNmi: false };

  constructor(readonly vendor: "amd" | "intel") {}

  /** process_nmi: at most two NMIs pending, one while an NMI is masked or being injected. */
  processNmi(): void {
    const limit = this.nmi.masked || this.nmi.injected ? 1 : 2;
    this.nmi.pending = Math.min(this.nmi.pending, limit);
  }

  /** KVM_GET_VCPU_EVENTS; `countsNmis`: 6.2+ report the number of pending NMIs, 6.1 whether there is one. */
  get(countsNmis: boolean): KvmVcpuEvents {
    this.processNmi();
    const e = zeroStruct("kvm_vcpu_events");
    const ex = this.exception;
    if (!isSoft(ex.nr)) {
      // without KVM_CAP_EXCEPTION_PAYLOAD pending and injected are reported together, as injected
      e.exception.injected = ex.injected || ex.pending ? 1 : 0;
      e.exception.pending = 0;
    }
    e.exception.nr = ex.nr;
    e.exception.has_error_code = ex.hasErrorCode ? 1 : 0;
    e.exception.error_code = ex.errorCode;
    e.exception_has_payload = ex.hasPayload ? 1 : 0;
    e.exception_payload = ex.payload;
    e.interrupt.injected = this.interrupt.injected && !this.interrupt.soft ? 1 : 0;
    e.interrupt.nr = this.interrupt.nr;
    e.interrupt.shadow = this.shadow;
    e.nmi.injected = this.nmi.injected ? 1 : 0;
    e.nmi.pending = countsNmis ? this.nmi.pending : this.nmi.pending !== 0 ? 1 : 0;
    e.nmi.masked = this.nmi.masked ? 1 : 0;
    e.smi.smm = this.smi.smm ? 1 : 0;
    e.smi.pending = this.smi.pending ? 1 : 0;
    e.smi.smm_inside_nmi = this.smi.insideNmi ? 1 : 0;
    e.flags = VCPU_EVENT_FLAGS.NMI_PENDING | VCPU_EVENT_FLAGS.SHADOW | VCPU_EVENT_FLAGS.SMM;
    return e;
  }

  /** KVM_SET_VCPU_EVENTS: "EINVAL" or undefined (applied). No KVM_CAP_EXCEPTION_PAYLOAD, no triple-fault event. */
  set(e: KvmVcpuEvents): "EINVAL" | undefined {
    if ((e.flags & ~KNOWN_FLAGS) !== 0) return "EINVAL";
    if (e.flags & VCPU_EVENT_FLAGS.PAYLOAD) return "EINVAL";
    const pending = 0;
    const injected = e.exception.injected !== 0;
    if ((injected || pending) && (e.exception.nr > 31 || e.exception.nr === NMI_VECTOR)) return "EINVAL";
    if (e.flags & VCPU_EVENT_FLAGS.TRIPLE_FAULT) return "EINVAL";
    this.processNmi();
    this.exception = { injected, pending: false, nr: e.exception.nr, hasErrorCode: e.exception.has_error_code !== 0, errorCode: e.exception.error_code, hasPayload: false, payload: e.exception_payload };
    this.interrupt = { injected: e.interrupt.injected !== 0, nr: e.interrupt.nr, soft: e.interrupt.soft !== 0 };
    if (e.flags & VCPU_EVENT_FLAGS.SHADOW) this.shadow = this.vendorShadow(e.interrupt.shadow);
    this.nmi.injected = e.nmi.injected !== 0;
    if (e.flags & VCPU_EVENT_FLAGS.NMI_PENDING) this.nmi.pending = e.nmi.pending;
    this.nmi.masked = e.nmi.masked !== 0;
    if (e.flags & VCPU_EVENT_FLAGS.SMM) {
      this.smi.pending = e.smi.pending !== 0;
      this.smi.smm = e.smi.smm !== 0;
      if (this.smi.smm) this.smi.insideNmi = e.smi.smm_inside_nmi !== 0;
    }
    return undefined;
  }

  /** set_interrupt_shadow: SVM keeps one "interrupt shadow" bit, read back as STI|MOV_SS; VMX keeps MOV_SS over STI. */
  vendorShadow(mask: number): number {
    if (this.vendor === "amd") return mask & 0x3 ? 0x3 : 0;
    return mask & 0x2 ? 0x2 : mask & 0x1 ? 0x1 : 0;
  }
}
