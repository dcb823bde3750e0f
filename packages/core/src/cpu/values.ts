/**
 * 64-bit values interned to small integers. The model's state is one typed array (state-layout.ts);
 * every register, memory word and bitmap value in it is an id into this table, so copying a state is
 * one `slice`, hashing it never builds a string, and moving a value (MOV, XSAVE, a copy into regs[])
 * moves an integer. bigint appears only where values are made or shown: immediates, arithmetic on
 * addresses and XCR0, parsing and printing.
 *
 * One table per thread: ids are stable for the life of the process, and value 0 is id 0, so a
 * zero-filled state holds zeros.
 */
import { ModelBugError } from "../errors.js";

/** Ids stay below 2^23 so that (id << 8 | tag) memory words remain small integers. */
const MAX_VALUES = 1 << 23;

export class ValueTable {
  readonly #ids = new Map<bigint, number>();
  /** id → value (always in 0..2^64-1). */
  readonly values: bigint[] = [];
  /** id → low 32 bits as an unsigned number (XCR0 feature tests without bigint arithmetic). */
  readonly low: number[] = [];
  /** id → bits 32..63 as an unsigned number. */
  readonly high: number[] = [];

  constructor() {
    this.id(0n);
  }

  /** The id of `v` (taken modulo 2^64), interning it on first sight. */
  id(v: bigint): number {
    const hit = this.#ids.get(v);
    if (hit !== undefined) return hit;
    const u = BigInt.asUintN(64, v);
    const again = this.#ids.get(u);
    if (again !== undefined) {
      if (u !== v) this.#ids.set(v, again);
      return again;
    }
    const id = this.values.length;
    if (id >= MAX_VALUES) throw new ModelBugError(`more than ${MAX_VALUES} distinct 64-bit values interned`);
    this.values.push(u);
    this.low.push(Number(u & 0xffff_ffffn));
    this.high.push(Number(u >> 32n));
    this.#ids.set(u, id);
    if (u !== v) this.#ids.set(v, id);
    return id;
  }

  get size(): number {
    return this.values.length;
  }
}

/** The thread's value table. */
export const VALUES = new ValueTable();
const VAL = VALUES.values;

/** Id of a 64-bit value. */
export const vid = (v: bigint): number => VALUES.id(v);
/** Value of an id. */
export const val = (id: number): bigint => VAL[id]!;
/** Low 32 bits of the value `id` names, as an unsigned number. */
export const valLow = (id: number): number => VALUES.low[id]!;

/**
 * A memory word as the executor moves it: value id and provenance tag in one small integer, so a
 * load returns without allocating. Tags are < 256 (provenance.ts).
 */
export const word = (id: number, tag: number): number => id * 256 + tag;
export const wordId = (w: number): number => (w / 256) | 0;
export const wordTag = (w: number): number => w & 255;
