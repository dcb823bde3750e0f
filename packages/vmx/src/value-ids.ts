/**
 * Value ids (core's interned 64-bit values) of the small numbers the nested VMX and TDX code moves
 * into its state — exit reasons, lengths, register numbers, ports, MSR indices, TDVMCALL leaves —
 * and of 32-bit halves, without a bigint made per call (`vid(BigInt(n))` interns by hashing a bigint).
 */
import { VALUES, vid } from "@kvmx/core";

const SMALL_LIMIT = 1 << 16;
const small: number[] = [];
const u32 = new Map<number, number>();

/** The id of the unsigned 32-bit number `n`; numbers below 2^16 come from an array, the rest from a map. */
export function numId(n: number): number {
  const u = n >>> 0;
  if (u < SMALL_LIMIT) return (small[u] ??= vid(BigInt(u)));
  let id = u32.get(u);
  if (id === undefined) u32.set(u, (id = vid(BigInt(u))));
  return id;
}

/** The id of the low 32 bits of the value `id` names: `id` itself when the high half is already zero. */
export const lo32Id = (id: number): number => (VALUES.high[id] === 0 ? id : numId(VALUES.low[id]!));

/** The id of 1 (flags kept as values: is_guest_mode, launch state, a pending TDVMCALL). */
export const ONE_ID = numId(1);
