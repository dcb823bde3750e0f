import { ModelBugError } from "../errors.js";
import { NR_GPRS } from "../cpu/gpr.js";
import { Tag, type ProvenanceTag } from "../cpu/provenance.js";
import type { StateStore } from "../cpu/physical-cpu.js";
import { VALUES, val, vid } from "../cpu/values.js";
import { XFEATURE, XFEATURE_MASK } from "../cpu/xfeatures.js";
import { MASK_WORDS, maskWords, regLayout, wordsMask, type RegLayout } from "./regs.js";
import { SlotKind, V, VCPU_FIXED_KINDS, VCPU_REG_SLOTS } from "./state-layout.js";
import { TaggedSlots } from "./slots.js";
import { vendorFieldSpec, vendorFieldByName, type VendorField } from "./vendor-fields.js";

/** Guest CPUID facts KVM derives XCR0 support from (docs/facts.md#guest-supported-xcr0: CPUID 0xD.0 EDX:EAX). */
export interface GuestCpuid {
  /** CPUID.0xD.0 EDX:EAX — the XCR0 bits the guest is told it may set. */
  xcr0Mask: bigint;
  /** CPUID.(7,1):EDX[21]. */
  apx: boolean;
}

/** A design as a vCPU block needs it: its name and the register layout its EGPR home implies. */
export interface VcpuDesignInfo {
  readonly name: string;
  readonly layout: RegLayout;
  /** Guest fpstate holds component 19 (the fpstate design on an APX CPU). */
  readonly fpstateHasApx: boolean;
}

/**
 * The shape of one vCPU block in a packed state: the fixed fields (state-layout.ts V), then one slot
 * per MSR the machine models, then one per vendor field its backend declares.
 */
export class VcpuBlockLayout {
  readonly size: number;
  readonly msrSlot = new Map<number, number>();
  /** Vendor field id → slot offset in the block, -1 when this machine has no such field. */
  readonly vendorSlot: number[];
  readonly kinds: readonly SlotKind[];

  constructor(
    readonly designs: readonly VcpuDesignInfo[],
    readonly cpuid: GuestCpuid,
    readonly msrs: readonly number[],
    readonly vendorFields: readonly VendorField[],
    /** Standalone vCPUs (the simulated /dev/kvm) keep MSRs outside this list in a map; a Machine's may not. */
    readonly openMsrs = false,
    /**
     * Compare "rip" vendor fields exactly (vendor-fields.ts): for a machine whose KVM code a variant
     * edits (it may break the RIP write-back the reduction relies on). Always with a PRE layout.
     */
    compareRips = false,
  ) {
    let at = V.SIZE;
    const kinds: SlotKind[] = [...VCPU_FIXED_KINDS];
    for (const m of msrs) {
      this.msrSlot.set(m, at++);
      kinds.push(SlotKind.value1);
    }
    // vendor-fields.ts "rip": left out of the fingerprint unless compared on purpose or some vCPU uses PRE.
    const ripsCompared = compareRips || designs.some((d) => d.layout.pre);
    let maxId = -1;
    for (const f of vendorFields) maxId = Math.max(maxId, f);
    this.vendorSlot = new Array<number>(maxId + 1).fill(-1);
    for (const f of vendorFields) {
      if (this.vendorSlot[f] !== -1) continue;
      this.vendorSlot[f] = at++;
      const kind = vendorFieldSpec(f).kind;
      kinds.push(
        kind === "value" ? SlotKind.value
        : kind === "tag" ? SlotKind.tag
        : kind === "exit-info" || (kind === "rip" && !ripsCompared) ? SlotKind.ignored
        : SlotKind.control,
      );
    }
    this.size = at;
    this.kinds = kinds;
  }

  designIndex(name: string): number {
    const i = this.designs.findIndex((d) => d.name === name);
    if (i < 0) throw new ModelBugError(`design ${name} is not part of this machine's state layout`);
    return i;
  }
}

/** MSRs the model's guests touch, keyed by index (`vcpu->arch` MSR state and the emulated MSRs). */
export interface MsrStore {
  get(index: number): bigint | undefined;
  set(index: number, value: bigint): void;
  has(index: number): boolean;
  entries(): [number, bigint][];
}

const LOW = VALUES.low;
const APX_LOW_BIT = 1 << XFEATURE.APX;

/**
 * `struct kvm_vcpu_arch`, the parts kvmx models (docs/facts.md#register-cache, #xcr0-rules): regs[]
 * with provenance, a dedicated rip (POST), regs_avail/regs_dirty, guest XCR0/XSS/PKRU, the guest
 * fpstate, MSRs and the vendor state — a view over one vCPU block of a packed state.
 */
export class VcpuState {
  readonly #s: StateStore;
  readonly #b: number;
  readonly block: VcpuBlockLayout;
  #regs: TaggedSlots | undefined;
  #fp: GuestFpstate | undefined;
  #msrs: MsrStore | undefined;
  /** Standalone vCPUs only: MSRs outside the block's list. */
  readonly #extraMsrs: Map<number, bigint> | undefined;

  constructor(store: StateStore, base: number, block: VcpuBlockLayout) {
    this.#s = store;
    this.#b = base;
    this.block = block;
    this.#extraMsrs = block.openMsrs ? new Map() : undefined;
  }

  get base(): number {
    return this.#b;
  }

  /** A raw slot of this vCPU's block (state-layout.ts V offsets): fields without a typed accessor (feature-state.ts). */
  slot(off: number): number {
    return this.#s.a[this.#b + off]!;
  }
  setSlot(off: number, x: number): void {
    this.#s.a[this.#b + off] = x;
  }

  /** This vCPU's block of the packed state. */
  blockArray(): number[] {
    return this.#s.a.slice(this.#b, this.#b + this.block.size);
  }

  /**
   * kvm_arch_vcpu_create at this block: both bitmaps all ones (the only place eager registers become
   * available), the model's guests in long mode with CR4.OSXSAVE, XCR0 = x87.
   */
  initialise(id: number, designIndex: number, protectedState: boolean): void {
    const a = this.#s.a;
    const b = this.#b;
    const info = this.block.designs[designIndex];
    if (!info) throw new ModelBugError(`design index ${designIndex} outside the block's ${this.block.designs.length} designs`);
    a.fill(0, b, b + this.block.size);
    a[b + V.ID] = id;
    a[b + V.DESIGN] = designIndex;
    a.fill(Tag.init, b + V.REGS_TAG, b + V.REGS_TAG + VCPU_REG_SLOTS);
    this.rip = 0xfff0n;
    this.rflags = 0x2n;
    this.cr0 = 0x8005_0033n; // PE|MP|ET|NE|WP|PG: the model's guests run in long mode
    this.cr3 = 0x1000n;
    this.cr4 = 0x40620n; // PAE|OSFXSR|OSXMMEXCPT|OSXSAVE
    this.regsAvail = info.layout.allMask;
    this.regsDirty = info.layout.allMask;
    this.xcr0 = XFEATURE_MASK.FP;
    this.cr4Osxsave = true;
    this.longMode = true;
    this.fpstate.features = XFEATURE_MASK.FP | XFEATURE_MASK.SSE | XFEATURE_MASK.YMM | (info.fpstateHasApx ? XFEATURE_MASK.APX : 0n);
    this.protectedState = protectedState;
  }
  get id(): number {
    return this.#s.a[this.#b + V.ID]!;
  }
  get designIndex(): number {
    return this.#s.a[this.#b + V.DESIGN]!;
  }
  /** Which design (by name) this vCPU runs under; migration may move the guest to another. */
  get design(): string {
    return this.block.designs[this.designIndex]!.name;
  }
  get layout(): RegLayout {
    return this.block.designs[this.designIndex]!.layout;
  }
  get cpuid(): GuestCpuid {
    return this.#cpuid ?? this.block.cpuid;
  }
  /**
   * KVM_SET_CPUID2 on a standalone vCPU (the simulated /dev/kvm). A Machine's vCPUs share their
   * layout's CPUID (it is part of the configuration, not of the state).
   */
  set cpuid(c: GuestCpuid) {
    if (!this.block.openMsrs) throw new ModelBugError("a Machine vCPU's CPUID is fixed by its configuration");
    this.#cpuid = c;
  }
  #cpuid: GuestCpuid | undefined;

  /** regs[]: layout.nrGprs slots (+1 in PRE for RIP) with provenance tags. */
  get regs(): TaggedSlots {
    const d = this.#s.a[this.#b + V.DESIGN]!;
    if (this.#regs === undefined || this.#regsDesign !== d) {
      const l = this.block.designs[d]!.layout;
      this.#regs = new TaggedSlots(this.#s, this.#b + V.REGS, this.#b + V.REGS_TAG, l.pre ? l.nrGprs + 1 : l.nrGprs);
      this.#regsDesign = d;
    }
    return this.#regs;
  }
  #regsDesign = -1;

  #get(off: number): bigint {
    return val(this.#s.a[this.#b + off]!);
  }
  #set(off: number, v: bigint): void {
    this.#s.a[this.#b + off] = vid(v);
  }
  get rip(): bigint {
    return this.#get(V.RIP);
  }
  set rip(v: bigint) {
    this.#set(V.RIP, v);
  }
  get rflags(): bigint {
    return this.#get(V.RFLAGS);
  }
  set rflags(v: bigint) {
    this.#set(V.RFLAGS, v);
  }
  /** Cached control registers (valid when their avail bit is set) and EPT PDPTRs. */
  get cr0(): bigint {
    return this.#get(V.CR0);
  }
  set cr0(v: bigint) {
    this.#set(V.CR0, v);
  }
  get cr3(): bigint {
    return this.#get(V.CR3);
  }
  set cr3(v: bigint) {
    this.#set(V.CR3, v);
  }
  get cr4(): bigint {
    return this.#get(V.CR4);
  }
  set cr4(v: bigint) {
    this.#set(V.CR4, v);
  }
  pdptr(i: number): bigint {
    return this.#get(V.PDPTR + (i & 3));
  }
  setPdptr(i: number, v: bigint): void {
    this.#set(V.PDPTR + (i & 3), v);
  }

  /** regs_avail / regs_dirty as 16-bit words (register-cache.ts works on these). */
  availWord(w: number): number {
    return this.#s.a[this.#b + V.AVAIL + w]!;
  }
  setAvailWord(w: number, bits: number): void {
    this.#s.a[this.#b + V.AVAIL + w] = bits & 0xffff;
  }
  dirtyWord(w: number): number {
    return this.#s.a[this.#b + V.DIRTY + w]!;
  }
  setDirtyWord(w: number, bits: number): void {
    this.#s.a[this.#b + V.DIRTY + w] = bits & 0xffff;
  }
  /** regs_avail as a bitmap (for traces and tests; the accessors use the words). */
  get regsAvail(): bigint {
    return wordsMask(this.#s.a.slice(this.#b + V.AVAIL, this.#b + V.AVAIL + MASK_WORDS));
  }
  set regsAvail(m: bigint) {
    maskWords(m).forEach((w, i) => this.setAvailWord(i, w));
  }
  get regsDirty(): bigint {
    return wordsMask(this.#s.a.slice(this.#b + V.DIRTY, this.#b + V.DIRTY + MASK_WORDS));
  }
  set regsDirty(m: bigint) {
    maskWords(m).forEach((w, i) => this.setDirtyWord(i, w));
  }

  get xcr0(): bigint {
    return this.#get(V.XCR0);
  }
  set xcr0(v: bigint) {
    this.#set(V.XCR0, v);
  }
  get xcr0Id(): number {
    return this.#s.a[this.#b + V.XCR0]!;
  }
  set xcr0Id(id: number) {
    this.#s.a[this.#b + V.XCR0] = id;
  }
  get ripId(): number {
    return this.#s.a[this.#b + V.RIP]!;
  }
  set ripId(id: number) {
    this.#s.a[this.#b + V.RIP] = id;
  }
  get xssId(): number {
    return this.#s.a[this.#b + V.XSS]!;
  }
  set xssId(id: number) {
    this.#s.a[this.#b + V.XSS] = id;
  }
  /** PKRU as a value id (the packed state keeps PKRU interned like any 64-bit value). */
  get pkruId(): number {
    return this.#s.a[this.#b + V.PKRU]!;
  }
  set pkruId(id: number) {
    this.#s.a[this.#b + V.PKRU] = id;
  }
  /** Guest XCR0.APX. */
  get xcr0Apx(): boolean {
    return (LOW[this.#s.a[this.#b + V.XCR0]!]! & APX_LOW_BIT) !== 0;
  }
  get xss(): bigint {
    return this.#get(V.XSS);
  }
  set xss(v: bigint) {
    this.#set(V.XSS, v);
  }
  get pkru(): number {
    return LOW[this.#s.a[this.#b + V.PKRU]!]!;
  }
  set pkru(v: number) {
    this.#s.a[this.#b + V.PKRU] = vid(BigInt(v >>> 0));
  }
  /** Guest CR4.OSXSAVE (kvm_load_xfeatures is skipped when clear). */
  get cr4Osxsave(): boolean {
    return this.#s.a[this.#b + V.OSXSAVE] !== 0;
  }
  set cr4Osxsave(on: boolean) {
    this.#s.a[this.#b + V.OSXSAVE] = on ? 1 : 0;
  }
  /** Guest is in 64-bit mode (EFER.LMA && CS.L): register_read/write do not mask. */
  get longMode(): boolean {
    return this.#s.a[this.#b + V.LONG_MODE] !== 0;
  }
  set longMode(on: boolean) {
    this.#s.a[this.#b + V.LONG_MODE] = on ? 1 : 0;
  }
  /** SEV-ES / TDX: KVM may not touch the guest's registers (docs/facts.md#sev-es, #tdx). */
  get protectedState(): boolean {
    return this.#s.a[this.#b + V.PROTECTED] !== 0;
  }
  set protectedState(on: boolean) {
    this.#s.a[this.#b + V.PROTECTED] = on ? 1 : 0;
  }

  /** The guest's FPU state as KVM keeps it (`vcpu->arch.guest_fpu.fpstate`), reduced to what kvmx observes. */
  get fpstate(): GuestFpstate {
    return (this.#fp ??= new GuestFpstate(this.#s, this.#b));
  }

  get msrs(): MsrStore {
    return (this.#msrs ??= this.#msrStore());
  }
  #msrStore(): MsrStore {
    const s = this.#s;
    const b = this.#b;
    const block = this.block;
    const extra = this.#extraMsrs;
    const slot = (index: number): number | undefined => block.msrSlot.get(index);
    const noSlot = (index: number): never => {
      throw new ModelBugError(`MSR 0x${index.toString(16)} is not part of this machine's state layout (VcpuBlockLayout.msrs)`);
    };
    return {
      get(index) {
        const o = slot(index);
        if (o === undefined) return extra ? extra.get(index) : undefined;
        const raw = s.a[b + o]!;
        return raw === 0 ? undefined : val(raw - 1);
      },
      set(index, value) {
        const o = slot(index);
        if (o === undefined) {
          if (!extra) noSlot(index);
          extra!.set(index, BigInt.asUintN(64, value));
          return;
        }
        s.a[b + o] = vid(value) + 1;
      },
      has(index) {
        const o = slot(index);
        return o === undefined ? (extra?.has(index) ?? false) : s.a[b + o] !== 0;
      },
      entries() {
        const out: [number, bigint][] = [];
        for (const [index, o] of block.msrSlot) {
          const raw = s.a[b + o]!;
          if (raw !== 0) out.push([index, val(raw - 1)]);
        }
        if (extra) out.push(...extra.entries());
        return out.sort((x, y) => x[0] - y[0]);
      },
    };
  }

  #vendorOffset(f: VendorField): number {
    const o = this.block.vendorSlot[f] ?? -1;
    if (o < 0) throw new ModelBugError(`vendor field ${vendorFieldSpec(f).name} is not declared by this machine's backend`);
    return this.#b + o;
  }
  /** A vendor field (VMCS field, VMCB/VMSA/GHCB/TD state); a field never written reads as 0. */
  vendorGet(f: VendorField): bigint {
    return val(this.#s.a[this.#vendorOffset(f)]!);
  }
  vendorId(f: VendorField): number {
    return this.#s.a[this.#vendorOffset(f)]!;
  }
  vendorSet(f: VendorField, v: bigint): void {
    this.#s.a[this.#vendorOffset(f)] = vid(v);
  }
  vendorSetId(f: VendorField, id: number): void {
    this.#s.a[this.#vendorOffset(f)] = id;
  }
  hasVendorField(f: VendorField): boolean {
    return (this.block.vendorSlot[f] ?? -1) >= 0;
  }
  /** Vendor fields by name with their values (tags as numbers) — for traces, `kvmx run --verbose` and tests. */
  vendorEntries(): [string, bigint][] {
    const out: [string, bigint][] = [];
    this.block.vendorSlot.forEach((o, f) => {
      if (o < 0) return;
      const raw = this.#s.a[this.#b + o]!;
      out.push([vendorFieldSpec(f).name, vendorFieldSpec(f).kind === "tag" ? BigInt(raw) : val(raw)]);
    });
    return out;
  }
  /** A vendor field by name (tests and diagnostics; backends use field ids). */
  vendorByName(name: string): bigint | undefined {
    const spec = vendorFieldByName(name);
    return spec && this.hasVendorField(spec.id) ? this.vendorGet(spec.id) : undefined;
  }
}

/**
 * The guest's FPU state as KVM keeps it, reduced to what kvmx observes: the features the buffer
 * holds, XSTATE_BV, the APX component (R16..R31 with provenance) and an interned id for the rest of
 * the image (the bytes userspace last set; 0 = init state). Component 19 is part of the fpstate only
 * when the design keeps EGPRs there (docs/facts.md#design-positions, position 1).
 */
export class GuestFpstate {
  readonly #s: StateStore;
  readonly #b: number;
  #egpr: TaggedSlots | undefined;

  constructor(store: StateStore, vcpuBase: number) {
    this.#s = store;
    this.#b = vcpuBase;
  }
  /** Component 19: R16..R31 with provenance. */
  get egpr(): TaggedSlots {
    return (this.#egpr ??= new TaggedSlots(this.#s, this.#b + V.FP_EGPR, this.#b + V.FP_EGPR_TAG, 16));
  }
  /** Features the fpstate buffer holds (`fpstate->xfeatures`). */
  get features(): bigint {
    return val(this.#s.a[this.#b + V.FP_FEATURES]!);
  }
  get featuresId(): number {
    return this.#s.a[this.#b + V.FP_FEATURES]!;
  }
  set features(v: bigint) {
    this.#s.a[this.#b + V.FP_FEATURES] = vid(v);
  }
  get xstateBv(): bigint {
    return val(this.#s.a[this.#b + V.FP_XSTATE_BV]!);
  }
  set xstateBv(v: bigint) {
    this.#s.a[this.#b + V.FP_XSTATE_BV] = vid(v);
  }
  get xstateBvId(): number {
    return this.#s.a[this.#b + V.FP_XSTATE_BV]!;
  }
  set xstateBvId(id: number) {
    this.#s.a[this.#b + V.FP_XSTATE_BV] = id;
  }
  /** XSTATE_BV[19]: component 19 is in the buffer. */
  get apxPresent(): boolean {
    return (LOW[this.#s.a[this.#b + V.FP_XSTATE_BV]!]! & APX_LOW_BIT) !== 0;
  }
  /** Interned non-APX image bytes (uapi-ops.ts); 0 means the init state. */
  get restId(): number {
    return this.#s.a[this.#b + V.FP_REST]!;
  }
  set restId(id: number) {
    this.#s.a[this.#b + V.FP_REST] = id;
  }
}


export interface CreateVcpuOptions {
  id: number;
  design: string;
  pre?: boolean;
  egprsInRegs: boolean;
  fpstateHasApx: boolean;
  cpuid: GuestCpuid;
  protectedState?: boolean;
  /** MSRs with slots (standalone vCPUs keep any other MSR in a map). */
  msrs?: readonly number[];
  vendorFields?: readonly VendorField[];
}

/** A standalone vCPU (the simulated /dev/kvm, tests): its own packed block. */
export function createVcpu(o: CreateVcpuOptions): VcpuState {
  const layout = regLayout({ pre: o.pre ?? false, egprsInRegs: o.egprsInRegs });
  const block = new VcpuBlockLayout([{ name: o.design, layout, fpstateHasApx: o.fpstateHasApx }], o.cpuid, o.msrs ?? [], o.vendorFields ?? [], true);
  const v = new VcpuState({ a: new Array<number>(block.size).fill(0) }, 0, block);
  v.initialise(o.id, 0, o.protectedState ?? false);
  return v;
}

/** A standalone copy of `v` (its block only). */
export function cloneVcpu(v: VcpuState): VcpuState {
  const c = new VcpuState({ a: v.blockArray().slice() }, 0, v.block);
  for (const [i, x] of v.msrs.entries()) if (!v.block.msrSlot.has(i)) c.msrs.set(i, x);
  return c;
}

/** Number of R0..R31 a vCPU's guest can address: all 32 exist architecturally (docs/facts.md#apx-registers). */
export const GUEST_GPRS = NR_GPRS;
export type { ProvenanceTag };
