import type { Hash64 } from "./state-hash.js";

/**
 * The visited-state store of the breadth-first search: an open-addressing hash set of 64-bit state
 * hashes on typed arrays, plus per-node parent pointers (parent node id and the index of the event,
 * in the parent's `events()` list, that reached it). About 22 bytes per state: no key strings and no
 * object graph, so millions of states fit in a few tens of MiB.
 *
 * With assumption valuations (the sweep) a state is reachable under some valuations (a bitmask per
 * node). The slot remembers every valuation the state was reached under; reaching it again under new
 * ones adds a node for just those (its own parent: the path that reached them), so every valuation's
 * search stays breadth-first and every counterexample replays under its own valuation.
 */
export class VisitedTable {
  private slotHi: Uint32Array;
  private slotLo: Uint32Array;
  /** Node id + 1 per slot; 0 marks an empty slot. */
  private slotNode: Int32Array;
  /** Valuations the slot's state has been reached under. */
  private slotSeen: Int32Array;
  private mask: number;
  private parents: Int32Array;
  private eventIdx: Uint16Array;
  private nodeMask: Int32Array;
  /** Per node: the classes of the events on its path from the start (bit per class; see explore's `eventClass`). */
  private nodeClasses: Int32Array;
  private count = 0;
  private nodes = 0;

  constructor(initialCapacity = 1 << 12) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap <<= 1;
    this.slotHi = new Uint32Array(cap);
    this.slotLo = new Uint32Array(cap);
    this.slotNode = new Int32Array(cap);
    this.slotSeen = new Int32Array(cap);
    this.mask = cap - 1;
    this.parents = new Int32Array(initialCapacity);
    this.eventIdx = new Uint16Array(initialCapacity);
    this.nodeMask = new Int32Array(initialCapacity);
    this.nodeClasses = new Int32Array(initialCapacity);
  }

  /** Distinct states. */
  get size(): number {
    return this.count;
  }

  /** Bytes held by the typed arrays (for the benchmark's memory report). */
  get bytes(): number {
    return (
      this.slotHi.byteLength + this.slotLo.byteLength + this.slotNode.byteLength + this.slotSeen.byteLength +
      this.parents.byteLength + this.eventIdx.byteLength + this.nodeMask.byteLength + this.nodeClasses.byteLength
    );
  }

  /**
   * Records that the state with hash `h` is reachable under the valuations in `valuations` (default:
   * the one valuation, bit 0) from node `parent` (-1 for a start state) by its event `event`, whose
   * class bit is `classBit` (0: none). Returns a new node id for the valuations not seen before
   * (`valuationsOf(id)`), or -1 when there are none.
   */
  insert(h: Hash64, parent: number, event: number, valuations = 1, classBit = 0): number {
    if ((this.count + 1) * 2 > this.slotNode.length) this.grow();
    const slot = this.findSlot(h.hi, h.lo);
    let fresh: number;
    if (this.slotNode[slot] === 0) {
      this.slotHi[slot] = h.hi;
      this.slotLo[slot] = h.lo;
      this.count++;
      fresh = valuations;
    } else {
      fresh = valuations & ~this.slotSeen[slot]!;
      if (fresh === 0) return -1;
    }
    this.slotSeen[slot] = this.slotSeen[slot]! | fresh;
    const id = this.nodes++;
    if (id >= this.parents.length) this.growNodes();
    if (this.slotNode[slot] === 0) this.slotNode[slot] = id + 1;
    this.parents[id] = parent;
    this.eventIdx[id] = event;
    this.nodeMask[id] = fresh;
    this.nodeClasses[id] = (parent >= 0 ? this.nodeClasses[parent]! : 0) | classBit;
    return id;
  }

  has(h: Hash64): boolean {
    return this.slotNode[this.findSlot(h.hi, h.lo)] !== 0;
  }

  /** The valuations node `id` was added for. */
  valuationsOf(id: number): number {
    return this.nodeMask[id]!;
  }

  /** Node `id`'s parent node (-1 for a start state). */
  parentOf(id: number): number {
    return this.parents[id]!;
  }

  /** The event classes on node `id`'s path from the start (a bit each). */
  classesOf(id: number): number {
    return this.nodeClasses[id]!;
  }

  /** Event indices from the start state to node `id`, in order. */
  pathTo(id: number): number[] {
    const path: number[] = [];
    let n = id;
    while (n >= 0) {
      const parent = this.parents[n] ?? -1;
      if (parent < 0) break;
      path.push(this.eventIdx[n] ?? 0);
      n = parent;
    }
    return path.reverse();
  }

  private findSlot(hi: number, lo: number): number {
    // Linear probing from the low bits; `lo` is already well mixed by the hash.
    let slot = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      if (this.slotNode[slot] === 0) return slot;
      if (this.slotHi[slot] === hi && this.slotLo[slot] === lo) return slot;
      slot = (slot + 1) & this.mask;
    }
  }

  private grow(): void {
    const oldHi = this.slotHi;
    const oldLo = this.slotLo;
    const oldNode = this.slotNode;
    const oldSeen = this.slotSeen;
    const cap = oldNode.length * 2;
    this.slotHi = new Uint32Array(cap);
    this.slotLo = new Uint32Array(cap);
    this.slotNode = new Int32Array(cap);
    this.slotSeen = new Int32Array(cap);
    this.mask = cap - 1;
    for (let i = 0; i < oldNode.length; i++) {
      const node = oldNode[i] ?? 0;
      if (node === 0) continue;
      const hi = oldHi[i] ?? 0;
      const lo = oldLo[i] ?? 0;
      const slot = this.findSlot(hi, lo);
      this.slotHi[slot] = hi;
      this.slotLo[slot] = lo;
      this.slotNode[slot] = node;
      this.slotSeen[slot] = oldSeen[i] ?? 0;
    }
  }

  private growNodes(): void {
    const n = this.parents.length * 2;
    const parents = new Int32Array(n);
    parents.set(this.parents);
    this.parents = parents;
    const events = new Uint16Array(n);
    events.set(this.eventIdx);
    this.eventIdx = events;
    const masks = new Int32Array(n);
    masks.set(this.nodeMask);
    this.nodeMask = masks;
    const classes = new Int32Array(n);
    classes.set(this.nodeClasses);
    this.nodeClasses = classes;
  }
}
