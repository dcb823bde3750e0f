/**
 * Hex text ↔ bytes, as the XSAVE JSON and the CLI's `--input hex` carry raw regions. Parsing is
 * lenient about whitespace and an optional 0x prefix per token; anything else is an InputError.
 */
import { InputError } from "../errors.js";

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function bytesToHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

/** Parses hex text (whitespace and "0x" prefixes ignored); `where` names the input in errors. */
export function hexToBytes(text: string, where = "hex input"): Uint8Array {
  const clean = text.replace(/0x/gi, "").replace(/\s+/g, "");
  if (clean.length % 2 !== 0) throw new InputError(`${where}: odd number of hex digits (${clean.length})`);
  const bad = /[^0-9a-fA-F]/.exec(clean);
  if (bad) throw new InputError(`${where}: "${bad[0]}" is not a hex digit`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** "0x…" for a u64 (the project's JSON convention: u64 values are "0x…" strings). */
export const u64Hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Parses a "0x…" (or decimal) u64 string; InputError otherwise. */
export function parseU64(text: unknown, where: string): bigint {
  if (typeof text === "number" && Number.isSafeInteger(text) && text >= 0) return BigInt(text);
  if (typeof text !== "string" || !/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(text.trim())) {
    throw new InputError(`${where}: expected a u64 as "0x…", got ${JSON.stringify(text)}`);
  }
  const v = BigInt(text.trim());
  if (v >> 64n !== 0n) throw new InputError(`${where}: ${text} does not fit in 64 bits`);
  return v;
}
