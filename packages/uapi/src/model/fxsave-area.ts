import type { KvmFpu } from "../api.js";

/**
 * The legacy (FXSAVE) region of the guest fpstate as KVM's buffer holds it, bytes 0..415. KVM_GET_FPU
 * and KVM_SET_FPU read and write these bytes directly (kvm_arch_vcpu_ioctl_get_fpu/set_fpu): no
 * XSTATE_BV check on GET, no XSTATE_BV update and no MXCSR on either — unlike KVM_GET/SET_XSAVE,
 * which go through the header (docs/facts.md#kvm-fpu). So the model keeps the raw bytes beside
 * core's header-aware XSAVE state and applies to them what each ioctl and KVM_RUN do.
 */
export const FCW_RESET = 0x37f;
export const MXCSR_RESET = 0x1f80;
const MXCSR_AT = 24;
const FP_END = 160;
const SSE_END = 416;

export class FxsaveArea {
  readonly bytes = new Uint8Array(SSE_END);
  readonly #dv = new DataView(this.bytes.buffer);

  /** fpstate_init_fxstate: FCW 0x37f, MXCSR 0x1f80, everything else (MXCSR_MASK too) zero. */
  constructor() {
    this.#dv.setUint16(0, FCW_RESET, true);
    this.#dv.setUint32(MXCSR_AT, MXCSR_RESET, true);
  }

  get mxcsr(): number {
    return this.#dv.getUint32(MXCSR_AT, true);
  }

  /** KVM_GET_FPU: the fields of struct kvm_fpu from the raw bytes; MXCSR is never copied (0). */
  toKvmFpu(): KvmFpu {
    const b = this.bytes;
    const dv = this.#dv;
    return {
      fpr: b.slice(32, FP_END),
      fcw: dv.getUint16(0, true),
      fsw: dv.getUint16(2, true),
      ftwx: b[4]!,
      pad1: 0,
      last_opcode: dv.getUint16(6, true),
      last_ip: dv.getBigUint64(8, true),
      last_dp: dv.getBigUint64(16, true),
      xmm: b.slice(FP_END, SSE_END),
      mxcsr: 0,
      pad2: 0,
    };
  }

  /** KVM_SET_FPU: st_space, cwd, swd, twd, fop, rip, rdp and xmm_space; MXCSR and the header untouched. */
  setFromKvmFpu(f: KvmFpu): void {
    const dv = this.#dv;
    this.bytes.set(f.fpr.subarray(0, 128), 32);
    dv.setUint16(0, f.fcw, true);
    dv.setUint16(2, f.fsw, true);
    this.bytes[4] = f.ftwx;
    dv.setUint16(6, f.last_opcode, true);
    dv.setBigUint64(8, f.last_ip, true);
    dv.setBigUint64(16, f.last_dp, true);
    this.bytes.set(f.xmm.subarray(0, 256), FP_END);
  }

  /**
   * KVM_SET_XSAVE (copy_uabi_to_xstate) on the legacy region: FP copies bytes 0..159 (MXCSR and
   * MXCSR_MASK included), SSE bytes 160..415; without FP, SSE or YMM still bring MXCSR and its mask.
   */
  setFromXsave(image: Uint8Array, xstateBv: bigint): void {
    const fp = (xstateBv & 1n) !== 0n;
    if (fp) this.bytes.set(image.subarray(0, FP_END), 0);
    else if ((xstateBv & 0b110n) !== 0n) this.bytes.set(image.subarray(MXCSR_AT, MXCSR_AT + 8), MXCSR_AT);
    if ((xstateBv & 2n) !== 0n) this.bytes.set(image.subarray(FP_END, SSE_END), FP_END);
  }

  /**
   * KVM_RUN loads the guest FPU with XRSTOR from the fpstate: a component whose XSTATE_BV bit is
   * clear is loaded in its init state (FP registers and control words, or XMM registers); MXCSR is
   * loaded whenever SSE or YMM is requested, whatever XSTATE_BV says (SDM Vol. 1 §13.8.1).
   */
  loadForRun(xstateBv: bigint): void {
    if ((xstateBv & 1n) === 0n) {
      const mxcsr = this.bytes.slice(MXCSR_AT, MXCSR_AT + 8);
      this.bytes.fill(0, 0, FP_END);
      this.#dv.setUint16(0, FCW_RESET, true);
      this.bytes.set(mxcsr, MXCSR_AT);
    }
    if ((xstateBv & 2n) === 0n) this.bytes.fill(0, FP_END, SSE_END);
  }
}
