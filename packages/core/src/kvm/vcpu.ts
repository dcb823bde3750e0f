import { NR_GPRS } from "../cpu/gpr.js";
import { Tag, type ProvenanceTag } from "../cpu/provenance.js";
import { XFEATURE_MASK } from "../cpu/xfeatures.js";
import { regLayout, type RegLayout } from "./regs.js";

/**
 * The guest's FPU state as KVM keeps it (`vcpu->arch.guest_fpu.fpstate`), reduced to what kvmx
 * observes: XSTATE_BV, the APX component (R16..R31 with provenance) and an interned id for the
 * rest of the image (the bytes userspace last set; 0 = init state). Component 19 is part of the
 * fpstate only when the design keeps EGPRs there (FACTS.md §7 position 1).
 */
export interface GuestFpstate {
  /** Features the fpstate buffer holds (`fpstate->xfeatures`). */
  features: bigint;
  xstateBv: bigint;
  egpr: BigUint64Array; // 16 entries: R16..R31
  egprTag: Uint16Array;
  /** Interned non-APX image bytes (see uapi-ops.ts); 0 means the init state. */
  restId: number;
}

/** Vendor-specific vCPU state (VMCS fields, VMCB, VMSA, TD): numbers and bigints only, keyed by name. */
export type VendorState = Record<string, bigint>;

/** Guest CPUID facts KVM derives XCR0 support from (FACTS.md §6: guest CPUID 0xD.0 EDX:EAX). */
export interface GuestCpuid {
  /** CPUID.0xD.0 EDX:EAX — the XCR0 bits the guest is told it may set. */
  xcr0Mask: bigint;
  /** CPUID.(7,1):EDX[21]. */
  apx: boolean;
}

/**
 * `struct kvm_vcpu_arch`, the parts kvmx models (FACTS.md §2, §6): regs[] with provenance, a
 * dedicated rip (POST), regs_avail/regs_dirty, guest XCR0/XSS/PKRU, guest fpstate, CPUID and the
 * vendor state. Plain data: cloned by `cloneVcpu`, hashed by the Machine.
 */
export interface VcpuState {
  readonly id: number;
  /** Which design (by name) this vCPU runs under; migration may move the guest to another. */
  readonly design: string;
  readonly layout: RegLayout;
  regs: BigUint64Array; // layout.nrGprs entries (+1 in PRE for RIP)
  regsTag: Uint16Array;
  rip: bigint;
  rflags: bigint;
  /** Cached control registers (valid when their avail bit is set) and EPT PDPTRs. */
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  pdptr: BigUint64Array;
  regsAvail: bigint;
  regsDirty: bigint;
  xcr0: bigint;
  xss: bigint;
  pkru: number;
  /** Guest CR4.OSXSAVE (kvm_load_xfeatures is skipped when clear). */
  cr4Osxsave: boolean;
  /** Guest is in 64-bit mode (EFER.LMA && CS.L): register_read/write do not mask. */
  longMode: boolean;
  fpstate: GuestFpstate;
  cpuid: GuestCpuid;
  /** MSR values the model's guests touch (by index), e.g. IA32_TSC_DEADLINE 0x6e0. */
  msrs: Map<number, bigint>;
  vendor: VendorState;
  /** SEV-ES / TDX: KVM may not touch the guest's registers (FACTS.md §4, §5). */
  protectedState: boolean;
}

export interface CreateVcpuOptions {
  id: number;
  design: string;
  pre?: boolean;
  egprsInRegs: boolean;
  fpstateHasApx: boolean;
  cpuid: GuestCpuid;
  protectedState?: boolean;
}

/** kvm_arch_vcpu_create: both bitmaps all ones (the only place eager registers become available). */
export function createVcpu(o: CreateVcpuOptions): VcpuState {
  const layout = regLayout({ pre: o.pre ?? false, egprsInRegs: o.egprsInRegs });
  const slots = layout.pre ? layout.nrGprs + 1 : layout.nrGprs;
  const regsTag = new Uint16Array(slots);
  regsTag.fill(Tag.init);
  return {
    id: o.id,
    design: o.design,
    layout,
    regs: new BigUint64Array(slots),
    regsTag,
    rip: 0xfff0n,
    rflags: 0x2n,
    cr0: 0x8005_0033n, // PE|MP|ET|NE|WP|PG: the model's guests run in long mode
    cr3: 0x1000n,
    cr4: 0x40620n, // PAE|OSFXSR|OSXMMEXCPT|OSXSAVE
    pdptr: new BigUint64Array(4),
    regsAvail: layout.allMask,
    regsDirty: layout.allMask,
    xcr0: XFEATURE_MASK.FP,
    xss: 0n,
    pkru: 0,
    cr4Osxsave: true,
    longMode: true,
    fpstate: {
      features: XFEATURE_MASK.FP | XFEATURE_MASK.SSE | XFEATURE_MASK.YMM | (o.fpstateHasApx ? XFEATURE_MASK.APX : 0n),
      xstateBv: 0n,
      egpr: new BigUint64Array(16),
      egprTag: new Uint16Array(16),
      restId: 0,
    },
    cpuid: o.cpuid,
    msrs: new Map(),
    vendor: {},
    protectedState: o.protectedState ?? false,
  };
}

export function cloneVcpu(v: VcpuState): VcpuState {
  return {
    ...v,
    regs: v.regs.slice(),
    regsTag: v.regsTag.slice(),
    pdptr: v.pdptr.slice(),
    fpstate: { ...v.fpstate, egpr: v.fpstate.egpr.slice(), egprTag: v.fpstate.egprTag.slice() },
    msrs: new Map(v.msrs),
    vendor: { ...v.vendor },
  };
}

/** Number of R0..R31 a vCPU's guest can address: all 32 exist architecturally (FACTS.md §1). */
export const GUEST_GPRS = NR_GPRS;
export type { ProvenanceTag };
