/**
 * 64-bit hashes of canonical state keys, as two 32-bit halves. The visited store keeps only these
 * hashes, never the key strings: two independent 32-bit mixes (different seeds and multipliers) give
 * a collision probability around n²/2⁶⁵ — about 3·10⁻⁸ for a million states.
 */
export interface Hash64 {
  hi: number;
  lo: number;
}

/** Hashes `key` into `out` (reused to avoid allocating per state on the hot path). */
export function hashKey(key: string, out: Hash64 = { hi: 0, lo: 0 }): Hash64 {
  let h1 = 0xdeadbeef ^ key.length;
  let h2 = 0x41c6ce57 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x9e3779b1);
    h2 = Math.imul(h2 ^ c, 0x5f356495);
  }
  // Final avalanche (murmur3 fmix32 style) so keys differing in the last characters spread out.
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
