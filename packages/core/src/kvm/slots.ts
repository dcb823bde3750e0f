/**
 * Array-like views over runs of the packed state: register files (values + provenance tags) and
 * plain value arrays. Reading a value is a table lookup (no allocation); `id`/`setId` move the
 * interned id itself, which is what the hot paths (GPR loads and stores, XSAVE) do.
 */
import { ModelBugError } from "../errors.js";
import type { StateStore } from "../cpu/physical-cpu.js";
import type { ProvenanceTag } from "../cpu/provenance.js";
import { val, vid } from "../cpu/values.js";

/** A run of value slots (ids) in a packed state. */
export class ValueSlots {
  constructor(
    protected readonly s: StateStore,
    protected readonly base: number,
    readonly length: number,
  ) {}

  protected check(i: number): void {
    if (i >>> 0 !== i || i >= this.length) throw new ModelBugError(`slot ${i} outside 0..${this.length - 1}`);
  }
  get(i: number): bigint {
    this.check(i);
    return val(this.s.a[this.base + i]!);
  }
  id(i: number): number {
    this.check(i);
    return this.s.a[this.base + i]!;
  }
  set(i: number, v: bigint): void {
    this.check(i);
    this.s.a[this.base + i] = vid(v);
  }
  setId(i: number, id: number): void {
    this.check(i);
    this.s.a[this.base + i] = id;
  }
  /** Sets slots from..to-1 to `v`. */
  fill(v: bigint, from = 0, to = this.length): void {
    this.s.a.fill(vid(v), this.base + from, this.base + to);
  }
  toArray(): bigint[] {
    return this.s.a.slice(this.base, this.base + this.length).map((id) => val(id));
  }
}

/** Value slots with a provenance tag each (a register file, the APX part of an XSAVE buffer). */
export class TaggedSlots extends ValueSlots {
  constructor(
    s: StateStore,
    base: number,
    protected readonly tagBase: number,
    length: number,
  ) {
    super(s, base, length);
  }

  tag(i: number): ProvenanceTag {
    this.check(i);
    return this.s.a[this.tagBase + i]!;
  }
  override set(i: number, v: bigint, tag?: ProvenanceTag): void {
    this.check(i);
    this.s.a[this.base + i] = vid(v);
    if (tag !== undefined) this.s.a[this.tagBase + i] = tag;
  }
  override setId(i: number, id: number, tag?: ProvenanceTag): void {
    this.check(i);
    this.s.a[this.base + i] = id;
    if (tag !== undefined) this.s.a[this.tagBase + i] = tag;
  }
  setTag(i: number, tag: ProvenanceTag): void {
    this.check(i);
    this.s.a[this.tagBase + i] = tag;
  }
  /** Sets slots from..to-1 to `v` with `tag`. */
  fillTagged(v: bigint, tag: ProvenanceTag, from = 0, to = this.length): void {
    this.s.a.fill(vid(v), this.base + from, this.base + to);
    this.s.a.fill(tag, this.tagBase + from, this.tagBase + to);
  }
  tags(): number[] {
    return this.s.a.slice(this.tagBase, this.tagBase + this.length);
  }
}
