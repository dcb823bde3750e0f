import { ModelBugError } from "../errors.js";
import { CPU_FIELDS, PhysicalCpu, type StateStore } from "../cpu/physical-cpu.js";
import { Tag } from "../cpu/provenance.js";
import { val, vid } from "../cpu/values.js";
import { H, HEADER_KINDS, SlotKind } from "./state-layout.js";
import { TaggedSlots, ValueSlots } from "./slots.js";
import { VcpuBlockLayout, VcpuState } from "./vcpu.js";

/**
 * What a Machine's packed states look like: the vCPU block shape, the NMI sites an armed NMI may
 * name, and the data values the checker's alphabet writes (renamed by first occurrence in the
 * fingerprint — docs/model.md#data-independence).
 */
export class MachineLayout {
  /** Value ids of the data alphabet (→ their rank), for the fingerprint's renaming. */
  readonly dataRank = new Map<number, number>();
  /** isData[id] = 1 when value id `id` is a data value (the fingerprint's hot test; ids past its end are not). */
  readonly isData: Uint8Array;

  constructor(
    readonly vcpuBlock: VcpuBlockLayout,
    readonly nmiSites: readonly string[],
    dataValues: readonly bigint[] = [],
  ) {
    dataValues.forEach((v, i) => this.dataRank.set(vid(v), i));
    this.isData = new Uint8Array(Math.max(-1, ...this.dataRank.keys()) + 1);
    for (const id of this.dataRank.keys()) this.isData[id] = 1;
  }

  vcpuBase(index: number): number {
    return H.SIZE + index * this.vcpuBlock.size;
  }
  sizeFor(nvcpus: number): number {
    return this.vcpuBase(nvcpus);
  }
}

/**
 * Everything one point of an exploration holds (DESIGN "The machine model"), packed into one
 * Int32Array (state-layout.ts): the physical CPU (R0–R31 with provenance, live XCR0), the vCPUs (a
 * second one after migration), the guest's architectural view of its registers, and the VMM task's
 * saved FPU copy of R16–R31 while KVM_RUN runs. Between events the CPU is in the VMM task
 * (userspace). Views (cpu, vcpus, expected…) are made on first use; `copy()` is one slice.
 */
export class MachineState implements StateStore {
  a: number[];
  readonly layout: MachineLayout;
  #cpu: PhysicalCpu | undefined;
  #vcpus: VcpuState[] | undefined;
  #current: VcpuState | undefined;
  #expected: ValueSlots | undefined;
  #userFp: TaggedSlots | undefined;
  #entry: TaggedSlots | undefined;

  constructor(layout: MachineLayout, a?: number[]) {
    this.layout = layout;
    this.a = a ?? packedWords(new Int32Array(layout.sizeFor(0)));
  }

  /** A state from packed words (the checker's frontier keeps states as int32 slabs). */
  static fromWords(layout: MachineLayout, words: Int32Array): MachineState {
    return new MachineState(layout, packedWords(words));
  }

  copy(): MachineState {
    return new MachineState(this.layout, this.a.slice());
  }

  get cpu(): PhysicalCpu {
    return (this.#cpu ??= PhysicalCpu.view(this, 0));
  }
  get vcpus(): readonly VcpuState[] {
    const n = this.a[H.NVCPUS]!;
    if (this.#vcpus?.length !== n) {
      const b = this.layout.vcpuBlock;
      this.#vcpus = Array.from({ length: n }, (_, i) => new VcpuState(this, this.layout.vcpuBase(i), b));
    }
    return this.#vcpus;
  }
  /** Index into vcpus of the vCPU the VMM runs. */
  get current(): number {
    return this.a[H.CURRENT]!;
  }
  set current(i: number) {
    this.a[H.CURRENT] = i;
    this.#current = undefined;
  }
  /** The vCPU the VMM runs. */
  get vcpu(): VcpuState {
    return (this.#current ??= this.#vcpus?.[this.a[H.CURRENT]!] ?? new VcpuState(this, this.layout.vcpuBase(this.a[H.CURRENT]!), this.layout.vcpuBlock));
  }
  /**
   * The guest's architectural R0..R31 ("expected" view): what it last wrote or userspace set; zeros
   * on first enable; kept across XCR0.APX toggles per the xcr0ApxDisable assumption.
   */
  get expected(): ValueSlots {
    return (this.#expected ??= new ValueSlots(this, H.EXPECTED, 32));
  }
  /** The VMM task's FPU save area, R16..R31 part (saved at kvm_load_guest_fpu, restored at put). */
  get userFpEgpr(): TaggedSlots {
    return (this.#userFp ??= new TaggedSlots(this, H.USER_FP, H.USER_FP_TAG, 16));
  }
  /** XSTATE_BV of the VMM task's fpstate buffer (bit 19 says whether component 19 was saved in use). */
  get userXstateBv(): bigint {
    return val(this.a[H.USER_XSTATE_BV]!);
  }
  set userXstateBv(v: bigint) {
    this.a[H.USER_XSTATE_BV] = vid(v);
  }
  get userXstateBvId(): number {
    return this.a[H.USER_XSTATE_BV]!;
  }
  set userXstateBvId(id: number) {
    this.a[H.USER_XSTATE_BV] = id;
  }
  /** -mapxf host: user R16..R31 saved at syscall entry (a -mapxf kernel must; restored at exit). */
  get entryEgpr(): TaggedSlots {
    return (this.#entry ??= new TaggedSlots(this, H.ENTRY, H.ENTRY_TAG, 16));
  }
  /** Site id where an armed NMI fires during the next KVM_RUN ("guest" = while the guest runs). */
  get armedNmi(): string | undefined {
    const i = this.a[H.ARMED_NMI]!;
    return i === 0 ? undefined : this.layout.nmiSites[i - 1];
  }
  set armedNmi(site: string | undefined) {
    if (site === undefined) {
      this.a[H.ARMED_NMI] = 0;
      return;
    }
    const i = this.layout.nmiSites.indexOf(site);
    if (i < 0) throw new ModelBugError(`NMI site ${site} is not one of this machine's NMI-open sites`);
    this.a[H.ARMED_NMI] = i + 1;
  }
  /** The armed NMI as index + 1 into the machine's NMI-site list (0 = none). */
  get armedNmiIndex(): number {
    return this.a[H.ARMED_NMI]!;
  }
  set armedNmiIndex(i: number) {
    this.a[H.ARMED_NMI] = i;
  }
  /** Number of kernel WARNs so far (a WARN is an event, not an exception). */
  get warnings(): number {
    return this.a[H.WARNINGS]!;
  }
  set warnings(n: number) {
    this.a[H.WARNINGS] = n;
  }

  /** Appends a vCPU block (kvm_arch_vcpu_create) and returns its view. */
  addVcpu(id: number, designIndex: number, protectedState: boolean): VcpuState {
    const n = this.a[H.NVCPUS]!;
    const size = this.layout.sizeFor(n + 1);
    while (this.a.length < size) this.a.push(0);
    this.a[H.NVCPUS] = n + 1;
    this.#current = undefined;
    const v = this.vcpus[n]!;
    v.initialise(id, designIndex, protectedState);
    return v;
  }
}

/**
 * The words as a packed array of small integers: the only shape `a` ever has, so every access to it
 * sees one array map. (`new Array(n).fill(0)` would be holey, and its copies too: V8 then checks for
 * holes on reads and the accessors see two shapes; `Array.from` of a typed array walks an iterator.)
 */
function packedWords(words: Int32Array): number[] {
  const a: number[] = [];
  for (let i = 0; i < words.length; i++) a.push(words[i]!);
  return a;
}

/** A fresh state: the CPU in the VMM task with XCR0 = `hostXcr0`, no vCPU yet. */
export function emptyMachineState(layout: MachineLayout, hostXcr0: bigint): MachineState {
  const st = new MachineState(layout);
  st.cpu.reset({ xcr0: hostXcr0, tag: Tag.hostUser });
  st.a.fill(Tag.init, H.USER_FP_TAG, H.USER_FP_TAG + 16);
  st.a.fill(Tag.init, H.ENTRY_TAG, H.ENTRY_TAG + 16);
  return st;
}

// ---- the fingerprint ------------------------------------------------------------------------------

/** A 64-bit state hash as two 32-bit halves (the checker's visited store keeps only these). */
export interface StateHash {
  hi: number;
  lo: number;
}

const RENAMED = 0x4000_0000;

/**
 * The fingerprint's plan of a block: the offsets of the slots it reads, grouped by kind (ignored
 * slots left out), so hashing a state is a few tight loops over the packed array.
 */
interface HashPlan {
  readonly control: Int32Array;
  readonly value: Int32Array;
  readonly value1: Int32Array;
  readonly tag: Int32Array;
  readonly flag: Int32Array;
}
function planOf(kinds: readonly SlotKind[]): HashPlan {
  const of = (k: SlotKind) => Int32Array.from(kinds.flatMap((x, i) => (x === k ? [i] : [])));
  return { control: of(SlotKind.control), value: of(SlotKind.value), value1: of(SlotKind.value1), tag: of(SlotKind.tag), flag: of(SlotKind.flag) };
}
const HEADER_PLAN = planOf(HEADER_KINDS);
const blockPlans = new WeakMap<VcpuBlockLayout, HashPlan>();
const blockPlan = (b: VcpuBlockLayout): HashPlan => {
  let p = blockPlans.get(b);
  if (!p) blockPlans.set(b, (p = planOf(b.kinds)));
  return p;
};

/**
 * The canonical sequence of a state (what two states must share to behave the same for every future
 * event): every slot but the ignored ones, of the header and the current vCPU (the VMM never runs or
 * queries another one again); tags reduced to host-user / host-kernel / other (the only distinction
 * any invariant makes); WARN counts reduced to zero / non-zero; data values renamed by first
 * occurrence (value slots are visited in a fixed order). The sequence is hashed, and kept in `out`
 * for stateKey.
 */
class Canonical {
  /** Data values seen so far, in order of first occurrence (ids), and how many (at most the data set's size). */
  private readonly seen = new Int32Array(64);
  private nSeen = 0;
  h1 = 0;
  h2 = 0;
  n = 0;
  out: number[] | undefined;

  reset(): void {
    this.nSeen = 0;
    this.h1 = 0x2545f491;
    this.h2 = 0x9e3779b9 | 0;
    this.n = 0;
  }
  private rename(id: number, isData: Uint8Array): number {
    if (id >= isData.length || isData[id] === 0) return id;
    for (let k = 0; k < this.nSeen; k++) if (this.seen[k] === id) return RENAMED + k;
    if (this.nSeen < this.seen.length) this.seen[this.nSeen] = id;
    return RENAMED + this.nSeen++;
  }
  /**
   * Emits a block's slots in plan order: mixed into both hash lanes (kept in locals, which is most
   * of a fingerprint's speed) and, for stateKey, appended to `out`.
   */
  block(a: readonly number[], base: number, p: HashPlan, isData: Uint8Array): void {
    const out = this.out;
    let h1 = this.h1;
    let h2 = this.h2;
    const c = p.control;
    for (let i = 0; i < c.length; i++) {
      const x = a[base + c[i]!]!;
      if (out) out.push(x);
      h1 = mix1(h1, x);
      h2 = mix2(h2, x);
    }
    const f = p.flag;
    for (let i = 0; i < f.length; i++) {
      const x = a[base + f[i]!] === 0 ? 0 : 1;
      if (out) out.push(x);
      h1 = mix1(h1, x);
      h2 = mix2(h2, x);
    }
    const t = p.tag;
    for (let i = 0; i < t.length; i++) {
      const y = a[base + t[i]!]!;
      const x = y === Tag.hostUser || y === Tag.hostKernel ? y : 0;
      if (out) out.push(x);
      h1 = mix1(h1, x);
      h2 = mix2(h2, x);
    }
    const v = p.value;
    const renaming = isData.length > 0;
    for (let i = 0; i < v.length; i++) {
      const y = a[base + v[i]!]!;
      const x = renaming ? this.rename(y, isData) : y;
      if (out) out.push(x);
      h1 = mix1(h1, x);
      h2 = mix2(h2, x);
    }
    const v1 = p.value1;
    for (let i = 0; i < v1.length; i++) {
      const y = a[base + v1[i]!]!;
      const x = y === 0 ? 0 : (renaming ? this.rename(y - 1, isData) : y - 1) + 1;
      if (out) out.push(x);
      h1 = mix1(h1, x);
      h2 = mix2(h2, x);
    }
    this.h1 = h1;
    this.h2 = h2;
    this.n += c.length + f.length + t.length + v.length + v1.length;
  }
}
/** One slot into each hash lane (multiply, rotate): small enough for V8 to inline into block's loops. */
const mix1 = (h: number, x: number): number => {
  const m = Math.imul(h ^ x, 0x9e3779b1);
  return (m << 13) | (m >>> 19);
};
const mix2 = (h: number, x: number): number => {
  const m = Math.imul(h ^ x, 0x85ebca77);
  return (m << 17) | (m >>> 15);
};
const CANON = new Canonical();

function canonical(st: MachineState, c: Canonical): void {
  const a = st.a;
  const isData = st.layout.isData;
  c.reset();
  c.block(a, 0, HEADER_PLAN, isData);
  if (a[H.NVCPUS]! > 0) c.block(a, st.layout.vcpuBase(a[H.CURRENT]!), blockPlan(st.layout.vcpuBlock), isData);
}

/** The state's 64-bit fingerprint, written into `out` (reused by the checker: no allocation per state). */
export function fingerprint(st: MachineState, out: StateHash = { hi: 0, lo: 0 }): StateHash {
  const c = CANON;
  c.out = undefined;
  canonical(st, c);
  let h1 = c.h1 ^ c.n;
  let h2 = c.h2 ^ c.n;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  h2 ^= h2 >>> 15;
  h2 = Math.imul(h2, 0x2c1b3c6d);
  h2 ^= h2 >>> 12;
  h2 = Math.imul(h2, 0x297a2d39);
  h2 ^= h2 >>> 15;
  out.hi = (h1 ^ Math.imul(h2, 0x27d4eb2d)) >>> 0;
  out.lo = (h2 ^ Math.imul(h1, 0x165667b1)) >>> 0;
  return out;
}

/** The canonical sequence as a string (tests, debugging; the checker uses `fingerprint`). */
export function stateKey(st: MachineState): string {
  const c = new Canonical();
  c.out = [];
  canonical(st, c);
  return c.out.join(",");
}

/** Offsets of the CPU block in a packed state (the CPU sits at 0). */
export const CPU_BASE = 0;
export const CPU_BLOCK_SIZE = CPU_FIELDS.SIZE;
