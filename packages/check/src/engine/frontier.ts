import { ModelBugError, type Explorable } from "@kvmx/core";

/**
 * One breadth-first level's states waiting to be expanded, with their visited-table node ids.
 *
 * A model that can `pack` its states into int32 words has them stored here in shared slabs — a few
 * bytes per word, instead of an object (and its cached views) per state — and gets each back through
 * `unpack` when it is expanded: a level of a large cell holds hundreds of thousands of states, and
 * this is where exploration's memory goes. Other models' states are kept as they are.
 */
export class Frontier<S> {
  readonly #pack: ((s: S) => ArrayLike<number>) | undefined;
  readonly #unpack: ((words: Int32Array) => S) | undefined;
  readonly #spare: Int32Array[];
  #ids: number[] = [];
  #states: (S | undefined)[] = [];
  /** Packed: slabs of words, and per entry its slab, offset and length. */
  #slabs: Int32Array[] = [];
  #used = 0;
  #where: number[] = [];

  /**
   * `spare`: slabs an expanded level gave back (`recycle`), taken before new ones are allocated. A
   * fresh 4 MiB slab costs a page fault per 4 KiB page on first touch, which on a virtual machine is
   * most of what storing a state costs; a reused one has its pages already.
   */
  constructor(model: Pick<Explorable<S, unknown>, "pack" | "unpack">, spare: Int32Array[] = []) {
    if (model.pack && model.unpack) {
      this.#pack = model.pack.bind(model);
      this.#unpack = model.unpack.bind(model);
    }
    this.#spare = spare;
  }

  get length(): number {
    return this.#ids.length;
  }

  push(state: S, id: number): void {
    this.#ids.push(id);
    if (!this.#pack) {
      this.#states.push(state);
      return;
    }
    const words = this.#pack(state);
    const n = words.length;
    let slab = this.#slabs[this.#slabs.length - 1];
    if (!slab || this.#used + n > slab.length) {
      const reuse = this.#spare.length > 0 && this.#spare[this.#spare.length - 1]!.length >= n;
      slab = reuse ? this.#spare.pop()! : new Int32Array(Math.max(SLAB_WORDS, n));
      this.#slabs.push(slab);
      this.#used = 0;
    }
    const at = this.#used;
    for (let i = 0; i < n; i++) {
      const w = words[i]!;
      if ((w | 0) !== w) throw new ModelBugError(`pack(): word ${i} of a state is ${w}, not a 32-bit integer`);
      slab[at + i] = w;
    }
    this.#used += n;
    this.#where.push(this.#slabs.length - 1, at, n);
  }

  id(i: number): number {
    return this.#ids[i]!;
  }

  /** The i-th state; a kept (unpacked) one is released, since each is expanded once. */
  take(i: number): S {
    if (!this.#unpack) {
      const s = this.#states[i]!;
      this.#states[i] = undefined;
      return s;
    }
    const slab = this.#slabs[this.#where[3 * i]!]!;
    const at = this.#where[3 * i + 1]!;
    return this.#unpack(slab.subarray(at, at + this.#where[3 * i + 2]!));
  }

  /**
   * Hands this level's slabs to the spare list it was made with, once every state was taken (the
   * model's `unpack` copies its words), and empties the frontier.
   */
  recycle(): void {
    this.#spare.push(...this.#slabs);
    this.#slabs = [];
    this.#where = [];
    this.#ids = [];
    this.#states = [];
    this.#used = 0;
  }
}

/** 4 MiB per slab: few allocations, little waste at the end of a level. */
const SLAB_WORDS = 1 << 20;
