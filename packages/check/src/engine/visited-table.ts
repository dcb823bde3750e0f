import type { Hash64 } from "./state-hash.js";

/**
 * The visited-state store of the breadth-first search: an open-addressing hash set of 64-bit state
 * hashes on typed arrays, plus per-state parent pointers (parent node id and the index of the event,
 * in the parent's `events()` list, that reached it). About 18 bytes per state: no key strings and no
 * object graph, so millions of states fit in a few tens of MiB.
 */
export class VisitedTable {
  private slotHi: Uint32Array;
  private slotLo: Uint32Array;
  /** Node id + 1 per slot; 0 marks an empty slot. */
  private slotNode: Int32Array;
  private mask: number;
  private parents: Int32Array;
  private eventIdx: Uint16Array;
  private count = 0;

  constructor(initialCapacity = 1 << 12) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap <<= 1;
    this.slotHi = new Uint32Array(cap);
    this.slotLo = new Uint32Array(cap);
    this.slotNode = new Int32Array(cap);
    this.mask = cap - 1;
    this.parents = new Int32Array(initialCapacity);
    this.eventIdx = new Uint16Array(initialCapacity);
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the typed arrays (for the benchmark's memory report). */
  get bytes(): number {
    return this.slotHi.byteLength + this.slotLo.byteLength + this.slotNode.byteLength + this.parents.byteLength + this.eventIdx.byteLength;
  }

  /**
   * Inserts a state hash; returns its new node id, or -1 when it was already present. `parent` is -1
   * for a start state.
   */
  insert(h: Hash64, parent: number, event: number): number {
    if ((this.count + 1) * 2 > this.slotNode.length) this.grow();
    const slot = this.findSlot(h.hi, h.lo);
    if (this.slotNode[slot] !== 0) return -1;
    const id = this.count++;
    if (id >= this.parents.length) this.growNodes();
    this.slotHi[slot] = h.hi;
    this.slotLo[slot] = h.lo;
    this.slotNode[slot] = id + 1;
    this.parents[id] = parent;
    this.eventIdx[id] = event;
    return id;
  }

  has(h: Hash64): boolean {
    return this.slotNode[this.findSlot(h.hi, h.lo)] !== 0;
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
    // Linear probing from the low bits; `lo` is already well mixed by hashKey.
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
    const cap = oldNode.length * 2;
    this.slotHi = new Uint32Array(cap);
    this.slotLo = new Uint32Array(cap);
    this.slotNode = new Int32Array(cap);
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
    }
  }

  private growNodes(): void {
    const parents = new Int32Array(this.parents.length * 2);
    parents.set(this.parents);
    this.parents = parents;
    const events = new Uint16Array(this.eventIdx.length * 2);
    events.set(this.eventIdx);
    this.eventIdx = events;
  }
}
