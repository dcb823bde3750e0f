/**
 * XCR0 as x86.c keeps it (docs/facts.md#xcr0-rules, docs/facts.md#supported-xcr0): guest-supported XCR0 from
 * guest CPUID, `__kvm_set_xcr` through the core rule table (one ordered list for XSETBV #GP and KVM_SET_XCRS
 * -EINVAL), XSETBV emulation, and RESET/INIT.
 */
import { kvmSetXcrCheck, guestSupportedXcr0 as coreGuestSupported, type Xcr0RuleName } from "../cpu/xcr0-rules.js";
import { XFEATURE_MASK, hasApx } from "../cpu/xfeatures.js";
import { Tag } from "../cpu/provenance.js";
import type { ModelOptions } from "../model-options.js";
import { gprRead, readEdxEax, type RegCacheCtx } from "./register-cache.js";
import type { VcpuState } from "./vcpu.js";

/** vcpu->arch.guest_supported_xcr0 = guest CPUID 0xD.0 EDX:EAX ∩ KVM-supported XCR0. */
export function vcpuGuestSupportedXcr0(vcpu: Pick<VcpuState, "cpuid">, kvmSupportedXcr0: bigint): bigint {
  const m = vcpu.cpuid.xcr0Mask;
  return coreGuestSupported({ eax: Number(m & 0xffff_ffffn), edx: Number(m >> 32n) }, kvmSupportedXcr0);
}

/**
 * __kvm_set_xcr(vcpu, index, value): the first failed rule (caller turns it into #GP or -EINVAL), or
 * undefined after storing the new XCR0. The register contents of R16–R31 are not KVM's business here.
 */
export function kvmSetXcr(vcpu: VcpuState, kvmSupportedXcr0: bigint, index: number, value: bigint): Xcr0RuleName | undefined {
  const failed = kvmSetXcrCheck(index, value, vcpuGuestSupportedXcr0(vcpu, kvmSupportedXcr0));
  if (failed) return failed;
  vcpu.xcr0 = BigInt.asUintN(64, value);
  return undefined;
}

export interface XsetbvOutcome {
  kind: "ok" | "gp";
  rule?: Xcr0RuleName;
  value: bigint;
}

/**
 * kvm_emulate_xsetbv: ECX and EDX:EAX come from regs[] through the per-GPR accessors (always
 * available); CPL > 0 or a failed rule → #GP injected, otherwise the caller skips the instruction.
 */
export function kvmEmulateXsetbv(ctx: RegCacheCtx, kvmSupportedXcr0: bigint, cpl: number): XsetbvOutcome {
  const v = ctx.vcpu;
  const index = Number(gprRead(v, 1) & 0xffff_ffffn);
  const value = readEdxEax(v);
  if (cpl !== 0) return { kind: "gp", value };
  const failed = kvmSetXcrCheck(index, value, vcpuGuestSupportedXcr0(v, kvmSupportedXcr0));
  if (failed) return { kind: "gp", rule: failed, value };
  // What __kvm_set_xcr does before storing the value, as steps a variant may edit (steps.ts "set-xcr").
  (ctx as { runSequence?(name: "set-xcr"): void }).runSequence?.("set-xcr");
  const rule = kvmSetXcr(v, kvmSupportedXcr0, index, value);
  return rule ? { kind: "gp", rule, value } : { kind: "ok", value };
}

/**
 * RESET sets XCR0 = FP and, per ASSUMPTIONS.egprResetValue, zeroes the guest's R16–R31 wherever the
 * design keeps them; INIT keeps XCR0 (docs/facts.md#xcr0-rules) and, as for all GPRs, leaves R16–R31 to RESET.
 */
export function resetXcr(vcpu: VcpuState, kind: "reset" | "init", options: ModelOptions): void {
  if (kind === "init") return;
  vcpu.xcr0 = XFEATURE_MASK.FP;
  vcpu.xss = 0n;
  if (options.egprResetValue === "zeros") {
    if (vcpu.layout.egprsInRegs) vcpu.regs.fillTagged(0n, Tag.init, 16, 32);
    vcpu.fpstate.egpr.fillTagged(0n, Tag.init);
    vcpu.fpstate.xstateBv &= ~XFEATURE_MASK.APX;
  }
}

export const xcr0HasApx = hasApx;
