import { KvmxError } from "@kvmx/core";

/** `--shard I/N`: the I-th of N slices of the matrix, 1-based. */
export interface Shard {
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new KvmxError(`--shard expects I/N with 1 ≤ I ≤ N (e.g. 1/4), got "${text}"`, "usage");
  }
  return { index, count };
}

/**
 * The cells of shard I/N: every N-th cell of the canonical order starting at I-1. Round-robin rather
 * than contiguous blocks so that each shard gets a mix of cheap (n/a) and expensive cells.
 */
export function selectShard<T>(cells: readonly T[], shard: Shard | undefined): T[] {
  if (!shard) return [...cells];
  return cells.filter((_, i) => i % shard.count === shard.index - 1);
}
