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
  egpr: bigint[]; // 16 entries: R16..R31
  egprTag: number[];
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
  regs: bigint[]; // layout.nrGprs entries (+1 in PRE for RIP)
  regsTag: number[];
  rip: bigint;
  rflags: bigint;
  /** Cached control registers (valid when their avail bit is set) and EPT PDPTRs. */
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  pdptr: bigint[];
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

/**
 * The vCPU's registers are plain arrays: copying one is a pointer copy per slot and reading a bigint
 * from it allocates nothing (a BigUint64Array read allocates a fresh BigInt, and each typed array
 * brings an ArrayBuffer the GC must track) — the checker copies and reads states constantly.
 */
interface VcpuArrays {
  regs: bigint[];
  regsTag: number[];
  pdptr: bigint[];
  egpr: bigint[];
  egprTag: number[];
}

function vcpuArrays(slots: number, from?: VcpuArrays): VcpuArrays {
  if (from) {
    return { regs: from.regs.slice(), regsTag: from.regsTag.slice(), pdptr: from.pdptr.slice(), egpr: from.egpr.slice(), egprTag: from.egprTag.slice() };
  }
  return {
    regs: new Array<bigint>(slots).fill(0n),
    regsTag: new Array<number>(slots).fill(0),
    pdptr: [0n, 0n, 0n, 0n],
    egpr: new Array<bigint>(16).fill(0n),
    egprTag: new Array<number>(16).fill(0),
  };
}

/** kvm_arch_vcpu_create: both bitmaps all ones (the only place eager registers become available). */
export function createVcpu(o: CreateVcpuOptions): VcpuState {
  const layout = regLayout({ pre: o.pre ?? false, egprsInRegs: o.egprsInRegs });
  const slots = layout.pre ? layout.nrGprs + 1 : layout.nrGprs;
  const a = vcpuArrays(slots);
  a.regsTag.fill(Tag.init);
  return {
    id: o.id,
    design: o.design,
    layout,
    regs: a.regs,
    regsTag: a.regsTag,
    rip: 0xfff0n,
    rflags: 0x2n,
    cr0: 0x8005_0033n, // PE|MP|ET|NE|WP|PG: the model's guests run in long mode
    cr3: 0x1000n,
    cr4: 0x40620n, // PAE|OSFXSR|OSXMMEXCPT|OSXSAVE
    pdptr: a.pdptr,
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
      egpr: a.egpr,
      egprTag: a.egprTag,
      restId: 0,
    },
    cpuid: o.cpuid,
    msrs: new Map(),
    vendor: {},
    protectedState: o.protectedState ?? false,
  };
}

export function cloneVcpu(v: VcpuState): VcpuState {
  const a = vcpuArrays(v.regs.length, { regs: v.regs, regsTag: v.regsTag, pdptr: v.pdptr, egpr: v.fpstate.egpr, egprTag: v.fpstate.egprTag });
  return {
    ...v,
    regs: a.regs,
    regsTag: a.regsTag,
    pdptr: a.pdptr,
    fpstate: { ...v.fpstate, egpr: a.egpr, egprTag: a.egprTag },
    msrs: new Map(v.msrs),
    vendor: { ...v.vendor },
  };
}

/** Number of R0..R31 a vCPU's guest can address: all 32 exist architecturally (FACTS.md §1). */
export const GUEST_GPRS = NR_GPRS;
export type { ProvenanceTag };
