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

type Decoder = (dv: DataView, bytes: Uint8Array, base: number) => Record<string, unknown>;

const READ: Readonly<Record<Scalar, (at: string) => string>> = {
  u8: (at) => `dv.getUint8(${at})`,
  u16: (at) => `dv.getUint16(${at}, true)`,
  u32: (at) => `dv.getUint32(${at}, true)`,
  u64: (at) => `dv.getBigUint64(${at}, true)`,
};

const compiled = new Map<StructName, Decoder>();

/**
 * The decoder of one struct, generated once from the layout table as a single object literal (so
 * every decoded value has one fixed shape); nested structs call their own compiled decoder. Field
 * names are the table's C identifiers, never user input.
 */
function decoderFor(name: StructName): Decoder {
  const hit = compiled.get(name);
  if (hit) return hit;
  const nested: Decoder[] = [];
  const element = (type: FieldSpec["type"], at: string): string => {
    if (typeof type === "string") return READ[type](at);
    nested.push(decoderFor(type.struct as StructName));
    return `n[${nested.length - 1}](dv, bytes, ${at})`;
  };
  const parts = (KVM_STRUCTS[name].fields as readonly FieldSpec[]).map((f) => {
    const at = `base + ${f.offset}`;
    if (f.count === undefined) return `${f.name}: ${element(f.type, at)}`;
    if (f.type === "u8") return `${f.name}: bytes.slice(${at}, ${at} + ${f.count})`;
    const size = elementSize(f.type);
    const items = Array.from({ length: f.count }, (_, i) => element(f.type, `base + ${f.offset + i * size}`));
    return `${f.name}: [${items.join(", ")}]`;
  });
  const make = new Function("n", `return function decode_${name}(dv, bytes, base) { return { ${parts.join(", ")} }; };`) as (n: Decoder[]) => Decoder;
  const decoder = make(nested);
  compiled.set(name, decoder);
  return decoder;
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
  return decoderFor(name)(view(bytes), bytes, offset) as StructValue<N>;
}

/**
 * A problem found while encoding; the path to the field is collected on the way out (so the happy
 * path builds no strings) and the top level rethrows it as a UapiEncodeError naming the field.
 */
class FieldProblem extends UapiEncodeError {
  readonly path: (string | number)[] = [];
  constructor(readonly problem: string) {
    super("", problem);
  }
}

function writeScalar(dv: DataView, type: Scalar, at: number, v: unknown): void {
  if (type === "u64") {
    if (typeof v !== "bigint" || v < 0n || v > U64_MAX) throw new FieldProblem(`expected a u64 bigint, got ${describe(v)}`);
    dv.setBigUint64(at, v, true);
    return;
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > SCALAR_MAX[type]) {
    throw new FieldProblem(`expected a ${type} integer, got ${describe(v)}`);
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

function encodeElement(dv: DataView, bytes: Uint8Array, type: FieldSpec["type"], at: number, v: unknown): void {
  if (typeof type === "object") encodeAt(type.struct as StructName, dv, bytes, at, v);
  else writeScalar(dv, type, at, v);
}

function encodeField(f: FieldSpec, dv: DataView, bytes: Uint8Array, at: number, v: unknown): void {
  if (f.count === undefined) {
    encodeElement(dv, bytes, f.type, at, v);
  } else if (f.type === "u8") {
    if (!(v instanceof Uint8Array) || v.byteLength !== f.count) throw new FieldProblem(`expected a Uint8Array of ${f.count} bytes`);
    bytes.set(v, at);
  } else {
    if (!Array.isArray(v) || v.length !== f.count) throw new FieldProblem(`expected an array of ${f.count}`);
    const size = elementSize(f.type);
    for (let i = 0; i < f.count; i++) {
      try {
        encodeElement(dv, bytes, f.type, at + i * size, v[i]);
      } catch (err) {
        if (err instanceof FieldProblem) err.path.unshift(i);
        throw err;
      }
    }
  }
}

function encodeAt(name: StructName, dv: DataView, bytes: Uint8Array, base: number, value: unknown): void {
  if (typeof value !== "object" || value === null) throw new FieldProblem(`expected a ${name} object, got ${describe(value)}`);
  const rec = value as Record<string, unknown>;
  for (const f of KVM_STRUCTS[name].fields as readonly FieldSpec[]) {
    try {
      encodeField(f, dv, bytes, base + f.offset, rec[f.name]);
    } catch (err) {
      if (err instanceof FieldProblem) err.path.unshift(f.name);
      throw err;
    }
  }
}

type Encoder = (dv: DataView, bytes: Uint8Array, base: number, v: unknown) => boolean;
const compiledEncoders = new Map<StructName, Encoder>();

/**
 * The fast encoder of one struct, generated from the layout table like the decoders: it checks and
 * writes every field inline and returns false at the first value that does not fit. The caller then
 * re-runs the generic encoder above, whose only job left is to say which field and why.
 */
function encoderFor(name: StructName): Encoder {
  const hit = compiledEncoders.get(name);
  if (hit) return hit;
  const nested: Encoder[] = [];
  const WRITE: Readonly<Record<Scalar, string>> = { u8: "setUint8", u16: "setUint16", u32: "setUint32", u64: "setBigUint64" };
  const scalar = (type: Scalar, val: string, at: string): string => {
    const check =
      type === "u64"
        ? `typeof ${val} !== "bigint" || ${val} < 0n || ${val} > M`
        : `typeof ${val} !== "number" || !(${val} >= 0 && ${val} <= ${SCALAR_MAX[type]}) || !Number.isInteger(${val})`;
    const endian = type === "u8" ? "" : ", true";
    return `if (${check}) return false; dv.${WRITE[type]}(${at}, ${val}${endian});`;
  };
  const element = (type: FieldSpec["type"], val: string, at: string): string => {
    if (typeof type === "string") return scalar(type, val, at);
    nested.push(encoderFor(type.struct as StructName));
    return `if (!n[${nested.length - 1}](dv, bytes, ${at}, ${val})) return false;`;
  };
  const lines = (KVM_STRUCTS[name].fields as readonly FieldSpec[]).map((f) => {
    const at = `base + ${f.offset}`;
    if (f.count === undefined) return `x = v.${f.name}; ${element(f.type, "x", at)}`;
    if (f.type === "u8") return `x = v.${f.name}; if (!(x instanceof Uint8Array) || x.byteLength !== ${f.count}) return false; bytes.set(x, ${at});`;
    const size = elementSize(f.type);
    const items = Array.from({ length: f.count }, (_, i) => `y = x[${i}]; ${element(f.type, "y", `base + ${f.offset + i * size}`)}`);
    return `x = v.${f.name}; if (!Array.isArray(x) || x.length !== ${f.count}) return false; ${items.join(" ")}`;
  });
  const body = `return function encode_${name}(dv, bytes, base, v) { if (typeof v !== "object" || v === null) return false; let x, y; ${lines.join("\n")} return true; };`;
  const encoder = (new Function("n", "M", body) as (n: Encoder[], m: bigint) => Encoder)(nested, U64_MAX);
  compiledEncoders.set(name, encoder);
  return encoder;
}

/** Encodes with the fast encoder; if it refuses, the generic one throws the error naming the field. */
function encodeChecked(name: StructName, target: Uint8Array, offset: number, value: unknown): void {
  const dv = view(target);
  if (encoderFor(name)(dv, target, offset, value)) return;
  withPath(name, () => encodeAt(name, dv, target, offset, value));
  throw new UapiEncodeError(name, "value rejected by the compiled encoder but not by the generic one");
}

/** Runs an encode, turning a FieldProblem into a UapiEncodeError that names the field path. */
function withPath(root: string, run: () => void): void {
  try {
    run();
  } catch (err) {
    if (!(err instanceof FieldProblem)) throw err;
    const path = err.path.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? k : `.${k}`)).join("");
    throw new UapiEncodeError(root, path ? `${path}: ${err.problem}` : err.problem);
  }
}

/** Writes struct `name` into `target` at `offset` (unnamed padding bytes are zeroed). */
export function encodeStructInto<N extends StructName>(name: N, value: StructValue<N>, target: Uint8Array, offset = 0): void {
  const size = KVM_STRUCTS[name].size;
  if (target.byteLength - offset < size || offset < 0) {
    throw new UapiEncodeError(name, `target too small: needs ${size} bytes at offset ${offset}`);
  }
  target.fill(0, offset, offset + size);
  encodeChecked(name, target, offset, value);
}

/** Encodes struct `name` into a fresh buffer of exactly its size. */
export function encodeStruct<N extends StructName>(name: N, value: StructValue<N>): Uint8Array {
  const out = new Uint8Array(KVM_STRUCTS[name].size);
  encodeChecked(name, out, 0, value);
  return out;
}

/** An all-zero value of struct `name` (what a zero-filled C struct decodes to). */
export function zeroStruct<N extends StructName>(name: N): StructValue<N> {
  return decodeStruct(name, new Uint8Array(KVM_STRUCTS[name].size));
}
