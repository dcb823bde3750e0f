/**
 * The x86.c emulation helpers exit handlers call (kvm_emulate_cpuid, the MSR-immediate handlers,
 * kvm_skip_emulated_instruction), and `readGuestReg`: KVM reading a guest GPR on the guest's behalf,
 * where the cache-coherence monitor checks the value against the guest's architectural one.
 */
import { cpuidLookup } from "../cpu/cpuid.js";
import { GPR_NAMES } from "../cpu/gpr.js";
import { isHostTag } from "../cpu/provenance.js";
import type { VendorCtx } from "./vendor-ops.js";
import { e32Write, gprRead, registerReadRawTagged, registerWrite, ripRead, ripWrite } from "./register-cache.js";

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** IA32_TSC_DEADLINE: an MSR VMX's fastpath handles for WRMSR and WRMSRNS-immediate. */
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
/** The x2APIC ICR (APIC_BASE_MSR + APIC_ICR/16): the other fastpath MSR (docs/facts.md#vmx-fastpath). */
export const MSR_X2APIC_ICR = 0x830;
/** The MSRs the fastpath handles (handle_fastpath_wrmsr): the write completes and the guest is re-entered. */
export const FASTPATH_MSRS: readonly number[] = [MSR_IA32_TSC_DEADLINE, MSR_X2APIC_ICR];

/** kvm_skip_emulated_instruction: RIP += instruction length (RIP becomes dirty → written back before entry). */
export function kvmSkipEmulatedInstruction(ctx: VendorCtx, length: number): void {
  ripWrite(ctx, ripRead(ctx) + BigInt(length));
}

/** kvm_register_read on the guest's behalf; a value other than the guest's own is a stale read. */
export function readGuestReg(ctx: VendorCtx, reg: number): bigint {
  const { value, tag } = registerReadRawTagged(ctx, reg);
  const v = ctx.vcpu.longMode ? value : value & 0xffff_ffffn;
  if (reg < 32 && !ctx.vcpu.protectedState) {
    const want = ctx.st.expected.get(reg);
    if (value !== want || isHostTag(tag)) {
      ctx.violate(
        "cache-coherence",
        `KVM read ${GPR_NAMES[reg]} = ${hex(value)}${isHostTag(tag) ? " (a host value)" : ""}, the guest's value is ${hex(want)} (stale read)`,
      );
    }
  }
  return v;
}

/** kvm_emulate_cpuid: EAX/ECX in, EAX..EDX out through the per-GPR accessors (no dirty bits). */
export function kvmEmulateCpuid(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const leaf = Number(gprRead(v, 0) & 0xffff_ffffn);
  const sub = Number(gprRead(v, 1) & 0xffff_ffffn);
  const r = cpuidLookup(ctx.guestCpuid, leaf, sub);
  e32Write(v, 0, BigInt(r.eax >>> 0), ctx.guestTag);
  e32Write(v, 3, BigInt(r.ebx >>> 0), ctx.guestTag);
  e32Write(v, 1, BigInt(r.ecx >>> 0), ctx.guestTag);
  e32Write(v, 2, BigInt(r.edx >>> 0), ctx.guestTag);
}

/** RDMSR imm (kvm_emulate_rdmsr_imm): MSR value into `reg` with kvm_register_write (marks it dirty). */
export function kvmEmulateRdmsrImm(ctx: VendorCtx, msr: number, reg: number): void {
  const value = ctx.vcpu.msrs.get(msr) ?? 0n;
  registerWrite(ctx, reg, value);
  if (ctx.tracing) ctx.note(`rdmsr 0x${msr.toString(16)} → ${GPR_NAMES[reg]} = ${hex(value)}`);
}

/** WRMSRNS imm / WRMSR data: the value `reg` holds goes to the MSR. */
export function kvmSetMsrFromReg(ctx: VendorCtx, msr: number, reg: number): void {
  const data = readGuestReg(ctx, reg);
  ctx.vcpu.msrs.set(msr, data);
  if (ctx.tracing) ctx.note(`MSR 0x${msr.toString(16)} ← ${GPR_NAMES[reg]} (${hex(data)})`);
}
