import { UapiDecodeError, UapiEncodeError } from "../errors.js";
import {
  KVM_STRUCTS,
  elementSize,
  type FieldSpec,
  type Scalar,
  type StructName,
  type StructValue,
} from "./layout.js";

/**
 * Table-driven little-endian codecs for the structs of layout.ts. Decoders copy out of the buffer
 * (a decoded value never aliases a kvm_run mapping); encoders check every value's type and range.
 */

const U64_MAX = (1n << 64n) - 1n;
const SCALAR_MAX: Readonly<Record<Exclude<Scalar, "u64">, number>> = { u8: 0xff, u16: 0xffff, u32: 0xffff_ffff };

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readScalar(dv: DataView, type: Scalar, at: number): number | bigint {
  switch (type) {
    case "u8":
      return dv.getUint8(at);
    case "u16":
      return dv.getUint16(at, true);
    case "u32":
      return dv.getUint32(at, true);
    case "u64":
      return dv.getBigUint64(at, true);
  }
}

function decodeElement(dv: DataView, bytes: Uint8Array, type: FieldSpec["type"], at: number): unknown {
  if (typeof type === "object") return decodeAt(type.struct as StructName, dv, bytes, at);
  return readScalar(dv, type, at);
}

function decodeAt(name: StructName, dv: DataView, bytes: Uint8Array, base: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of KVM_STRUCTS[name].fields as readonly FieldSpec[]) {
    const at = base + f.offset;
    if (f.count === undefined) {
      out[f.name] = decodeElement(dv, bytes, f.type, at);
    } else if (f.type === "u8") {
      out[f.name] = bytes.slice(at, at + f.count);
    } else {
      const size = elementSize(f.type);
      const arr: unknown[] = new Array(f.count);
      for (let i = 0; i < f.count; i++) arr[i] = decodeElement(dv, bytes, f.type, at + i * size);
      out[f.name] = arr;
    }
  }
  return out;
}

function checkRoom(name: string, bytes: Uint8Array, offset: number, need: number): void {
  if (!(bytes instanceof Uint8Array)) throw new UapiDecodeError(name, "input is not a byte buffer");
  if (!Number.isSafeInteger(offset) || offset < 0) throw new UapiDecodeError(name, `bad offset ${offset}`);
  if (bytes.byteLength - offset < need) {
    throw new UapiDecodeError(
      name,
      `truncated: needs ${need} bytes at offset ${offset}, buffer has ${Math.max(0, bytes.byteLength - offset)}`,
    );
  }
}

/** Decodes struct `name` from `bytes` at `offset`; throws UapiDecodeError if the buffer is too short. */
export function decodeStruct<N extends StructName>(name: N, bytes: Uint8Array, offset = 0): StructValue<N> {
  checkRoom(name, bytes, offset, KVM_STRUCTS[name].size);
  return decodeAt(name, view(bytes), bytes, offset) as StructValue<N>;
}

function writeScalar(dv: DataView, type: Scalar, at: number, v: unknown, where: string, root: string): void {
  if (type === "u64") {
    if (typeof v !== "bigint" || v < 0n || v > U64_MAX) throw new UapiEncodeError(root, `${where}: expected a u64 bigint, got ${describe(v)}`);
    dv.setBigUint64(at, v, true);
    return;
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > SCALAR_MAX[type]) {
    throw new UapiEncodeError(root, `${where}: expected a ${type} integer, got ${describe(v)}`);
  }
  if (type === "u8") dv.setUint8(at, v);
  else if (type === "u16") dv.setUint16(at, v, true);
  else dv.setUint32(at, v, true);
}

function describe(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number") return String(v);
  return v === null ? "null" : typeof v;
}

function encodeElement(dv: DataView, bytes: Uint8Array, type: FieldSpec["type"], at: number, v: unknown, where: string, root: string): void {
  if (typeof type === "object") encodeAt(type.struct as StructName, dv, bytes, at, v, where, root);
  else writeScalar(dv, type, at, v, where, root);
}

function encodeAt(name: StructName, dv: DataView, bytes: Uint8Array, base: number, value: unknown, where: string, root: string): void {
  if (typeof value !== "object" || value === null) throw new UapiEncodeError(root, `${where}: expected a ${name} object, got ${describe(value)}`);
  const rec = value as Record<string, unknown>;
  for (const f of KVM_STRUCTS[name].fields as readonly FieldSpec[]) {
    const at = base + f.offset;
    const v = rec[f.name];
    const path = where ? `${where}.${f.name}` : f.name;
    if (f.count === undefined) {
      encodeElement(dv, bytes, f.type, at, v, path, root);
    } else if (f.type === "u8") {
      if (!(v instanceof Uint8Array) || v.byteLength !== f.count) {
        throw new UapiEncodeError(root, `${path}: expected a Uint8Array of ${f.count} bytes`);
      }
      bytes.set(v, at);
    } else {
      if (!Array.isArray(v) || v.length !== f.count) throw new UapiEncodeError(root, `${path}: expected an array of ${f.count}`);
      const size = elementSize(f.type);
      for (let i = 0; i < f.count; i++) encodeElement(dv, bytes, f.type, at + i * size, v[i], `${path}[${i}]`, root);
    }
  }
}

/** Writes struct `name` into `target` at `offset` (unnamed padding bytes are zeroed). */
export function encodeStructInto<N extends StructName>(name: N, value: StructValue<N>, target: Uint8Array, offset = 0): void {
  const size = KVM_STRUCTS[name].size;
  if (target.byteLength - offset < size || offset < 0) {
    throw new UapiEncodeError(name, `target too small: needs ${size} bytes at offset ${offset}`);
  }
  target.fill(0, offset, offset + size);
  encodeAt(name, view(target), target, offset, value, "", name);
}

/** Encodes struct `name` into a fresh buffer of exactly its size. */
export function encodeStruct<N extends StructName>(name: N, value: StructValue<N>): Uint8Array {
  const out = new Uint8Array(KVM_STRUCTS[name].size);
  encodeAt(name, view(out), out, 0, value, "", name);
  return out;
}

/** An all-zero value of struct `name` (what a zero-filled C struct decodes to). */
export function zeroStruct<N extends StructName>(name: N): StructValue<N> {
  return decodeStruct(name, new Uint8Array(KVM_STRUCTS[name].size));
}
