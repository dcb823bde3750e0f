/**
 * Random byte buffers for property tests, drawn cheaply: fast-check picks a 32-bit seed and a
 * xorshift32 stream fills the bytes. `fc.uint8Array` draws every byte as its own arbitrary, which
 * costs ~50× more for buffers of kilobytes and buys nothing these tests use (shrinking a random
 * image byte by byte); a failing run is replayed from fast-check's seed as usual.
 */
import fc from "fast-check";
import { expect } from "vitest";

export function bytesFromSeed(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** `length` random bytes (a number, or an arbitrary of lengths). */
export function seededBytes(length: number | fc.Arbitrary<number>): fc.Arbitrary<Uint8Array> {
  const lengths = typeof length === "number" ? fc.constant(length) : length;
  return fc.tuple(lengths, fc.integer()).map(([len, seed]) => bytesFromSeed(len, seed));
}

/**
 * expect(actual).toEqual(expected) for byte arrays, fast: vitest's deep equality walks a typed array
 * element by element (slow for kilobytes); compare natively and fall back to toEqual, for its diff,
 * only when they differ.
 */
export function expectSameBytes(actual: Uint8Array | undefined, expected: Uint8Array, message?: string): void {
  if (actual !== undefined && actual.length === expected.length && Buffer.compare(actual, expected) === 0) return;
  expect(actual, message).toEqual(expected);
}
