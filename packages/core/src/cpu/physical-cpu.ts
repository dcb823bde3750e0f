import type { ModelOptions } from "../model-options.js";
import { EGPR_FIRST, NR_GPRS } from "./gpr.js";
import { Tag, type ProvenanceTag } from "./provenance.js";
import { XFEATURE, XFEATURE_MASK } from "./xfeatures.js";
import { VALUES, val, vid } from "./values.js";

/** Operating mode of the logical processor; R16–R31 exist only in long64 (docs/facts.md#apx-access-gate). */
export type CpuMode = "real" | "protected" | "compat" | "long64";
const MODES: readonly CpuMode[] = ["real", "protected", "compat", "long64"];
export const MODE_LONG64 = 3;

/** Something that holds a packed state array (a MachineState, or a PhysicalCpu's own). */
export interface StateStore {
  /**
   * The packed state: small integers only (value ids, tags, flags, 16-bit bitmap words), so V8 keeps
   * it as a packed array of small integers — copying it is a memcpy and it lives in the GC heap
   * (typed arrays cost an off-heap allocation each, which dominates when millions of states are made).
   */
  a: number[];
}

/**
 * Where the physical CPU's fields sit in a packed state, relative to its base. Values (GPRs, RIP,
 * RFLAGS, XCR0, XSS, XINUSE) are value ids (values.ts); tags, PKRU, CR4.OSXSAVE, mode and CPL are plain.
 */
export const CPU_FIELDS = {
  GPR: 0,
  TAG: NR_GPRS,
  RIP: 2 * NR_GPRS,
  RFLAGS: 2 * NR_GPRS + 1,
  XCR0: 2 * NR_GPRS + 2,
  XSS: 2 * NR_GPRS + 3,
  PKRU: 2 * NR_GPRS + 4,
  OSXSAVE: 2 * NR_GPRS + 5,
  MODE: 2 * NR_GPRS + 6,
  CPL: 2 * NR_GPRS + 7,
  XINUSE: 2 * NR_GPRS + 8,
  /** CR4.PKE (0/1): RDPKRU/WRPKRU #UD without it (docs/facts.md#pkru). */
  PKE: 2 * NR_GPRS + 9,
  /** IA32_XFD and IA32_XFD_ERR (value ids): docs/facts.md#xfd. */
  XFD: 2 * NR_GPRS + 10,
  XFD_ERR: 2 * NR_GPRS + 11,
  /** DR6 (value id): docs/facts.md#dr6. */
  DR6: 2 * NR_GPRS + 12,
  /** CR3 (value id): the guest's while it runs (docs/facts.md#cr3-reset). */
  CR3: 2 * NR_GPRS + 13,
  SIZE: 2 * NR_GPRS + 14,
} as const;
const F = CPU_FIELDS;
const APX_LOW_BIT = 1 << XFEATURE.APX;
const LOW = VALUES.low;

/**
 * The architectural state of one logical processor that kvmx tracks (DESIGN "Physical CPU"):
 * R0–R31 with a provenance tag each, RIP, the live XCR0/XSS/PKRU, CR4.OSXSAVE, mode, CPL and XINUSE.
 * A view over a packed state (the Machine's), or standalone with an array of its own.
 */
export class PhysicalCpu {
  #s: StateStore;
  readonly #b: number;

  constructor(init?: { xcr0?: bigint; tag?: ProvenanceTag }, store?: StateStore, base = 0) {
    this.#s = store ?? { a: new Array<number>(F.SIZE).fill(0) };
    this.#b = base;
    if (!store) {
      const a = this.#s.a;
      a[F.RFLAGS] = vid(0x2n);
      a[F.XCR0] = vid(init?.xcr0 ?? 0x1n);
      a[F.OSXSAVE] = 1;
      a[F.MODE] = MODE_LONG64;
      a[F.XINUSE] = vid(0x1n);
      a.fill(init?.tag ?? Tag.init, F.TAG, F.TAG + NR_GPRS);
    }
  }

  /** A view of the CPU stored at `base` in `store` (no initialisation). */
  static view(store: StateStore, base: number): PhysicalCpu {
    return new PhysicalCpu(undefined, store, base);
  }

  /** Initialises the fields at this view's place as a fresh CPU (XCR0 = x87 unless given). */
  reset(init?: { xcr0?: bigint; tag?: ProvenanceTag }): void {
    const a = this.#s.a;
    const b = this.#b;
    a.fill(0, b, b + F.SIZE);
    a[b + F.RFLAGS] = vid(0x2n);
    a[b + F.XCR0] = vid(init?.xcr0 ?? 0x1n);
    a[b + F.OSXSAVE] = 1;
    a[b + F.MODE] = MODE_LONG64;
    a[b + F.XINUSE] = vid(0x1n);
    a.fill(init?.tag ?? Tag.init, b + F.TAG, b + F.TAG + NR_GPRS);
  }

  /** A standalone copy. */
  clone(): PhysicalCpu {
    const c = new PhysicalCpu();
    c.#s.a = this.#s.a.slice(this.#b, this.#b + F.SIZE);
    return c;
  }

  gprId(index: number): number {
    return this.#s.a[this.#b + index]!;
  }
  gpr(index: number): bigint {
    return val(this.#s.a[this.#b + index]!);
  }
  gprTag(index: number): ProvenanceTag {
    return this.#s.a[this.#b + F.TAG + index]!;
  }
  setGpr(index: number, value: bigint, tag: ProvenanceTag): void {
    const a = this.#s.a;
    a[this.#b + index] = vid(value);
    a[this.#b + F.TAG + index] = tag;
  }
  setGprId(index: number, id: number, tag: ProvenanceTag): void {
    const a = this.#s.a;
    a[this.#b + index] = id;
    a[this.#b + F.TAG + index] = tag;
  }
  /** Tags of R16..R31 (for traces). */
  egprTags(): number[] {
    const o = this.#b + F.TAG + EGPR_FIRST;
    return this.#s.a.slice(o, o + 16);
  }

  get rip(): bigint {
    return val(this.#s.a[this.#b + F.RIP]!);
  }
  set rip(v: bigint) {
    this.#s.a[this.#b + F.RIP] = vid(v);
  }
  get rflags(): bigint {
    return val(this.#s.a[this.#b + F.RFLAGS]!);
  }
  set rflags(v: bigint) {
    this.#s.a[this.#b + F.RFLAGS] = vid(v);
  }
  /** The XCR0 currently loaded in hardware (XSETBV changes it; VM-entry does not, except a hardware switch). */
  get rflagsId(): number {
    return this.#s.a[this.#b + F.RFLAGS]!;
  }
  set rflagsId(id: number) {
    this.#s.a[this.#b + F.RFLAGS] = id;
  }
  get ripId(): number {
    return this.#s.a[this.#b + F.RIP]!;
  }
  set ripId(id: number) {
    this.#s.a[this.#b + F.RIP] = id;
  }
  get xcr0(): bigint {
    return val(this.#s.a[this.#b + F.XCR0]!);
  }
  set xcr0(v: bigint) {
    this.#s.a[this.#b + F.XCR0] = vid(v);
  }
  get xcr0Id(): number {
    return this.#s.a[this.#b + F.XCR0]!;
  }
  set xcr0Id(id: number) {
    this.#s.a[this.#b + F.XCR0] = id;
  }
  get xssId(): number {
    return this.#s.a[this.#b + F.XSS]!;
  }
  set xssId(id: number) {
    this.#s.a[this.#b + F.XSS] = id;
  }
  get pkruId(): number {
    return this.#s.a[this.#b + F.PKRU]!;
  }
  set pkruId(id: number) {
    this.#s.a[this.#b + F.PKRU] = id;
  }
  get xinuseId(): number {
    return this.#s.a[this.#b + F.XINUSE]!;
  }
  set xinuseId(id: number) {
    this.#s.a[this.#b + F.XINUSE] = id;
  }
  /** XCR0.APX: R16–R31 accessible (with 64-bit mode and CR4.OSXSAVE). */
  get xcr0Apx(): boolean {
    return (LOW[this.#s.a[this.#b + F.XCR0]!]! & APX_LOW_BIT) !== 0;
  }
  get xss(): bigint {
    return val(this.#s.a[this.#b + F.XSS]!);
  }
  set xss(v: bigint) {
    this.#s.a[this.#b + F.XSS] = vid(v);
  }
  get pkru(): number {
    return LOW[this.#s.a[this.#b + F.PKRU]!]!;
  }
  set pkru(v: number) {
    this.#s.a[this.#b + F.PKRU] = vid(BigInt(v >>> 0));
  }
  get cr4Osxsave(): boolean {
    return this.#s.a[this.#b + F.OSXSAVE] !== 0;
  }
  set cr4Osxsave(on: boolean) {
    this.#s.a[this.#b + F.OSXSAVE] = on ? 1 : 0;
  }
  get mode(): CpuMode {
    return MODES[this.#s.a[this.#b + F.MODE]!]!;
  }
  set mode(m: CpuMode) {
    this.#s.a[this.#b + F.MODE] = MODES.indexOf(m);
  }
  get long64(): boolean {
    return this.#s.a[this.#b + F.MODE] === MODE_LONG64;
  }
  get cpl(): number {
    return this.#s.a[this.#b + F.CPL]!;
  }
  set cpl(v: number) {
    this.#s.a[this.#b + F.CPL] = v;
  }
  /**
   * XINUSE (SDM 13.6): components the CPU knows to be outside their init state. XSAVE writes
   * XSTATE_BV[i] = XINUSE[i] for requested components; an all-zero component may still be in use.
   */
  get xinuse(): bigint {
    return val(this.#s.a[this.#b + F.XINUSE]!);
  }
  set xinuse(v: bigint) {
    this.#s.a[this.#b + F.XINUSE] = vid(v);
  }
  /** CR4.PKE. */
  get cr4Pke(): boolean {
    return this.#s.a[this.#b + F.PKE] !== 0;
  }
  set cr4Pke(on: boolean) {
    this.#s.a[this.#b + F.PKE] = on ? 1 : 0;
  }
  /** IA32_XFD as a value id (0 = no component disarmed). */
  get xfdId(): number {
    return this.#s.a[this.#b + F.XFD]!;
  }
  set xfdId(id: number) {
    this.#s.a[this.#b + F.XFD] = id;
  }
  get xfdErrId(): number {
    return this.#s.a[this.#b + F.XFD_ERR]!;
  }
  set xfdErrId(id: number) {
    this.#s.a[this.#b + F.XFD_ERR] = id;
  }
  get dr6Id(): number {
    return this.#s.a[this.#b + F.DR6]!;
  }
  set dr6Id(id: number) {
    this.#s.a[this.#b + F.DR6] = id;
  }
  get cr3Id(): number {
    return this.#s.a[this.#b + F.CR3]!;
  }
  set cr3Id(id: number) {
    this.#s.a[this.#b + F.CR3] = id;
  }
  /** XINUSE[19] |= 1 (writing an EGPR takes component 19 out of its init state). */
  markApxInUse(): void {
    const id = this.#s.a[this.#b + F.XINUSE]!;
    if ((LOW[id]! & APX_LOW_BIT) === 0) this.#s.a[this.#b + F.XINUSE] = vid(val(id) | XFEATURE_MASK.APX);
  }

  /**
   * What a successful XSETBV does to this CPU (the caller has checked the value): XCR0 changes and,
   * when XCR0[19] goes 1→0, R16–R31 are kept or zeroed per the xcr0ApxDisable assumption
   * (docs/facts.md#apx-xcr0-disable).
   */
  loadXcr0(value: bigint, options: ModelOptions): void {
    const wasApx = this.xcr0Apx;
    this.xcr0 = value;
    // The assumption is read only when it matters (the checker records which assumptions a run read).
    if (wasApx && !this.xcr0Apx && options.xcr0ApxDisable === "clear") {
      for (let r = EGPR_FIRST; r < NR_GPRS; r++) this.setGprId(r, 0, Tag.init);
      this.xinuse = this.xinuse & ~XFEATURE_MASK.APX;
    }
  }
}
