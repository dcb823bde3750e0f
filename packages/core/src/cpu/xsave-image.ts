/**
 * The XSAVE image codec (QEMU's x86_cpu_xsave_all_areas/x86_cpu_xrstor_all_areas idea, as pure
 * functions): decode a standard or compacted image into typed parts, encode it back byte-exact,
 * convert between the formats, build the init state.
 *
 * Decoding is lazy: an XsaveImage owns one copy of the bytes and reads fields through a DataView on
 * demand, so decode→encode is an identity for any well-sized buffer (every byte is kept, including
 * reserved ones and gaps) and costs about two copies (bench/xsave-codec.bench.ts). `xsaveToJson`
 * materialises everything, raw regions as hex, so `xsaveFromJson` can rebuild the exact bytes.
 */
import { InputError } from "../errors.js";
import type { CpuProfile } from "./cpu-profiles.js";
import { GPR_NAMES } from "./gpr.js";
import { bytesToHex, hexToBytes, parseU64, u64Hex } from "./hex-bytes.js";
import {
  XSAVE_EXTENDED_OFFSET,
  XSAVE_HEADER_OFFSET,
  componentName,
} from "./xsave-components.js";
import { xsaveLayout, type XsaveFormat, type XsaveLayout, type XsaveLayoutEntry } from "./xsave-layout.js";
import { XFEATURE, XFEATURE_MASK_FPSSE, xfeatureMask } from "./xfeatures.js";

const XSTATE_BV = XSAVE_HEADER_OFFSET;
const XCOMP_BV = XSAVE_HEADER_OFFSET + 8;
const HEADER_RESERVED = XSAVE_HEADER_OFFSET + 16;
const HEADER_RESERVED_SIZE = 48;
const COMPACTED_BIT = 1n << 63n;
/** Legacy-area offsets (FXSAVE 64-bit format, SDM table 10-2). */
const LEGACY = {
  fcw: 0, fsw: 2, ftw: 4, reserved5: 5, fop: 6, fip: 8, fdp: 16, mxcsr: 24, mxcsrMask: 28,
  st: 32, xmm: 160, tail: 416, end: 512,
} as const;

export interface XsaveComponentView {
  readonly index: number;
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  /** XSTATE_BV[index]: the image holds this component's state (else it is in its init state). */
  readonly present: boolean;
  /** A view into the image's bytes (writes go to the image). */
  readonly bytes: Uint8Array;
}

/** One decoded XSAVE image. Getters read the bytes on demand; setters write them. */
export class XsaveImage {
  readonly #view: DataView;

  constructor(
    /** The image's own bytes. */
    readonly bytes: Uint8Array,
    readonly layout: XsaveLayout,
    /** The profile whose leaf 0xD gave the layout, when known. */
    readonly profileName: string,
  ) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get format(): XsaveFormat {
    return this.layout.format;
  }
  get size(): number {
    return this.bytes.length;
  }

  get xstateBv(): bigint {
    return this.#view.getBigUint64(XSTATE_BV, true);
  }
  set xstateBv(v: bigint) {
    this.#view.setBigUint64(XSTATE_BV, BigInt.asUintN(64, v), true);
  }
  get xcompBv(): bigint {
    return this.#view.getBigUint64(XCOMP_BV, true);
  }
  set xcompBv(v: bigint) {
    this.#view.setBigUint64(XCOMP_BV, BigInt.asUintN(64, v), true);
  }
  /** Header bytes 16..63 (must be zero for XRSTOR and KVM_SET_XSAVE). */
  get headerReserved(): Uint8Array {
    return this.bytes.subarray(HEADER_RESERVED, HEADER_RESERVED + HEADER_RESERVED_SIZE);
  }

  get fcw(): number {
    return this.#view.getUint16(LEGACY.fcw, true);
  }
  set fcw(v: number) {
    this.#view.setUint16(LEGACY.fcw, v, true);
  }
  get fsw(): number {
    return this.#view.getUint16(LEGACY.fsw, true);
  }
  set fsw(v: number) {
    this.#view.setUint16(LEGACY.fsw, v, true);
  }
  /** Abridged x87 tag word (one bit per register). */
  get ftw(): number {
    return this.bytes[LEGACY.ftw]!;
  }
  set ftw(v: number) {
    this.bytes[LEGACY.ftw] = v;
  }
  get fop(): number {
    return this.#view.getUint16(LEGACY.fop, true);
  }
  set fop(v: number) {
    this.#view.setUint16(LEGACY.fop, v, true);
  }
  get fip(): bigint {
    return this.#view.getBigUint64(LEGACY.fip, true);
  }
  set fip(v: bigint) {
    this.#view.setBigUint64(LEGACY.fip, BigInt.asUintN(64, v), true);
  }
  get fdp(): bigint {
    return this.#view.getBigUint64(LEGACY.fdp, true);
  }
  set fdp(v: bigint) {
    this.#view.setBigUint64(LEGACY.fdp, BigInt.asUintN(64, v), true);
  }
  get mxcsr(): number {
    return this.#view.getUint32(LEGACY.mxcsr, true);
  }
  set mxcsr(v: number) {
    this.#view.setUint32(LEGACY.mxcsr, v >>> 0, true);
  }
  get mxcsrMask(): number {
    return this.#view.getUint32(LEGACY.mxcsrMask, true);
  }
  set mxcsrMask(v: number) {
    this.#view.setUint32(LEGACY.mxcsrMask, v >>> 0, true);
  }
  /** ST(k)/MMk slot: 16 bytes, the low 10 hold the 80-bit value. */
  st(k: number): Uint8Array {
    return this.bytes.subarray(LEGACY.st + 16 * k, LEGACY.st + 16 * (k + 1));
  }
  xmm(k: number): Uint8Array {
    return this.bytes.subarray(LEGACY.xmm + 16 * k, LEGACY.xmm + 16 * (k + 1));
  }

  /** The component at `index` as this image's layout places it, or undefined when the layout lacks it. */
  component(index: number): XsaveComponentView | undefined {
    const e = this.layout.components.find((c) => c.index === index);
    if (!e) return undefined;
    return this.#viewOf(e);
  }
  /** Every component of the layout, ascending. */
  components(): XsaveComponentView[] {
    return this.layout.components.map((e) => this.#viewOf(e));
  }
  #viewOf(e: XsaveLayoutEntry): XsaveComponentView {
    return {
      index: e.index,
      name: e.name,
      offset: e.offset,
      size: e.size,
      present: (this.xstateBv & xfeatureMask(e.index)) !== 0n,
      bytes: this.bytes.subarray(e.offset, e.offset + e.size),
    };
  }

  /** R16..R31 from component 19 (16 little-endian u64), or undefined when the layout has no APX component. */
  apxRegisters(): bigint[] | undefined {
    const e = this.layout.components.find((c) => c.index === XFEATURE.APX);
    if (!e) return undefined;
    return Array.from({ length: 16 }, (_, k) => this.#view.getBigUint64(e.offset + 8 * k, true));
  }
  /** Writes R(16+k) into component 19 (does not touch XSTATE_BV). */
  setApxRegister(k: number, value: bigint): void {
    const e = this.layout.components.find((c) => c.index === XFEATURE.APX);
    if (!e) throw new InputError(`this ${this.format} image's layout has no APX component`);
    if (!Number.isInteger(k) || k < 0 || k > 15) throw new InputError(`APX register index ${k} is not 0..15`);
    this.#view.setBigUint64(e.offset + 8 * k, BigInt.asUintN(64, value), true);
  }

  /** The image's bytes, as a fresh copy. */
  encode(): Uint8Array {
    return this.bytes.slice();
  }
}

export interface XsaveDecodeOptions {
  /** The CPU whose leaf 0xD gives sizes and offsets. */
  profile: CpuProfile;
  /**
   * Standard format: the components to lay out (default: the profile's supported XCR0). Components
   * that would lie past the end of the buffer are left out unless XSTATE_BV names them (then the image
   * is truncated). Compacted images take their components from XCOMP_BV.
   */
  xcr0?: bigint;
}


/** The layout a buffer of this size and header has; InputError when it is truncated or malformed. */
export function imageLayout(bytes: Uint8Array, opts: XsaveDecodeOptions, where = "XSAVE image"): XsaveLayout {
  const { profile } = opts;
  if (bytes.length < XSAVE_EXTENDED_OFFSET) {
    throw new InputError(`${where} is truncated: ${bytes.length} bytes, the legacy area and header alone need ${XSAVE_EXTENDED_OFFSET}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const xstateBv = dv.getBigUint64(XSTATE_BV, true);
  const xcompBv = dv.getBigUint64(XCOMP_BV, true);
  let layout: XsaveLayout;
  if ((xcompBv & COMPACTED_BIT) !== 0n) {
    const features = (xcompBv & ~COMPACTED_BIT) | XFEATURE_MASK_FPSSE;
    layout = xsaveLayout(profile, features, "compacted");
    if ((xstateBv & ~features) !== 0n) {
      throw new InputError(`${where}: XSTATE_BV ${u64Hex(xstateBv)} has bits outside XCOMP_BV ${u64Hex(xcompBv)}`);
    }
  } else {
    const wanted = ((opts.xcr0 ?? profile.supportedXcr0) | XFEATURE_MASK_FPSSE) & ~profile.supportedXss;
    layout = xsaveLayout(profile, wanted, "standard");
    if (layout.size > bytes.length) {
      let fits = wanted;
      for (const c of layout.components) if (c.offset + c.size > bytes.length) fits &= ~xfeatureMask(c.index);
      const cut = wanted & ~fits & xstateBv;
      if (cut !== 0n) {
        const first = layout.components.find((c) => (cut & xfeatureMask(c.index)) !== 0n)!;
        throw new InputError(
          `${where} is truncated: ${bytes.length} bytes, but XSTATE_BV names ${first.name} at ${first.offset}..${first.offset + first.size}`,
        );
      }
      layout = xsaveLayout(profile, fits, "standard");
    }
  }
  if (layout.size > bytes.length) {
    throw new InputError(`${where} is truncated: ${bytes.length} bytes, its ${layout.format} layout needs ${layout.size}`);
  }
  return layout;
}

/** Decodes an image (copying the bytes); InputError when it is truncated or its header is malformed. */
export function decodeXsave(bytes: Uint8Array, opts: XsaveDecodeOptions, where?: string): XsaveImage {
  const layout = imageLayout(bytes, opts, where);
  return new XsaveImage(bytes.slice(), layout, opts.profile.name);
}

/**
 * Why KVM_SET_XSAVE would refuse this image with EINVAL (validate_user_xstate_header and
 * copy_uabi_to_xstate, arch/x86/kernel/fpu/xstate.c; docs/facts.md#kvm-set-xsave): XSTATE_BV bits outside the
 * XCR0 KVM lets the guest use, XCOMP_BV ≠ 0 (KVM takes only the standard format), a non-zero reserved
 * header byte, MXCSR reserved bits while FP/SSE/YMM state is present. Empty when it would be accepted.
 */
export function kvmSetXsaveRejections(image: XsaveImage, supportedXcr0: bigint, mxcsrFeatureMask = 0xffff): string[] {
  const out: string[] = [];
  const outside = image.xstateBv & ~(supportedXcr0 | XFEATURE_MASK_FPSSE);
  if (outside !== 0n) out.push(`XSTATE_BV ${u64Hex(image.xstateBv)} has bits ${u64Hex(outside)} outside XCR0 ${u64Hex(supportedXcr0)}`);
  if (image.xcompBv !== 0n) {
    out.push(
      (image.xcompBv & COMPACTED_BIT) !== 0n
        ? `XCOMP_BV ${u64Hex(image.xcompBv)}: a compacted image; KVM_SET_XSAVE takes only the standard format`
        : `XCOMP_BV ${u64Hex(image.xcompBv)} is not 0 in a standard-format image`,
    );
  }
  const reserved = image.headerReserved.findIndex((b) => b !== 0);
  if (reserved >= 0) out.push(`reserved header byte ${HEADER_RESERVED + reserved} is not 0`);
  if ((image.xstateBv & (XFEATURE_MASK_FPSSE | xfeatureMask(XFEATURE.YMM))) !== 0n && (image.mxcsr & ~mxcsrFeatureMask) !== 0) {
    out.push(`MXCSR 0x${image.mxcsr.toString(16)} has reserved bits (mask 0x${mxcsrFeatureMask.toString(16)})`);
  }
  return out;
}

/**
 * Bytes past the end of the image's layout that are not zero, as [first, end), or undefined: no
 * component holds them (KVM_GET_XSAVE zero-fills its buffer past the layout, so non-zero bytes there
 * usually mean a wrong profile or XCR0, or data appended to the image).
 */
export function trailingBytes(image: XsaveImage): { start: number; end: number; nonZero: number } | undefined {
  const start = image.layout.size;
  let nonZero = 0;
  for (let i = start; i < image.size; i++) if (image.bytes[i] !== 0) nonZero++;
  return nonZero === 0 ? undefined : { start, end: image.size, nonZero };
}

/** Byte-exact encoding of a decoded image. */
export const encodeXsave = (image: XsaveImage): Uint8Array => image.encode();

// ---------------------------------------------------------------------------------------------
// Format conversion and init state

function copyComponents(from: XsaveImage, to: XsaveImage): void {
  for (const c of to.layout.components) {
    if (c.index < 2) continue;
    const src = from.component(c.index);
    if (src) to.bytes.set(src.bytes, c.offset);
  }
}

/**
 * Standard → compacted, as XSAVEC would write it: XCOMP_BV = bit 63 | the standard layout's
 * components; legacy area, XSTATE_BV, reserved header bytes and every component's bytes copied.
 */
export function toCompacted(image: XsaveImage, profile: CpuProfile): XsaveImage {
  if (image.format === "compacted") return new XsaveImage(image.encode(), image.layout, image.profileName);
  const layout = xsaveLayout(profile, image.layout.features, "compacted");
  const out = new XsaveImage(new Uint8Array(layout.size), layout, profile.name);
  out.bytes.set(image.bytes.subarray(0, XSAVE_EXTENDED_OFFSET));
  out.xcompBv = COMPACTED_BIT | image.layout.features;
  copyComponents(image, out);
  return out;
}

/** Compacted → standard (XCOMP_BV = 0), at least `minSize` bytes (e.g. 4096 for KVM_SET_XSAVE). */
export function toStandard(image: XsaveImage, profile: CpuProfile, minSize = 0): XsaveImage {
  if (image.format === "standard") return new XsaveImage(image.encode(), image.layout, image.profileName);
  const layout = xsaveLayout(profile, image.layout.features, "standard");
  const out = new XsaveImage(new Uint8Array(Math.max(layout.size, minSize)), layout, profile.name);
  out.bytes.set(image.bytes.subarray(0, XSAVE_EXTENDED_OFFSET));
  out.xcompBv = 0n;
  copyComponents(image, out);
  return out;
}

/** x87/SSE init values (SDM 13.6 "init state"): FCW 0x37F, MXCSR 0x1F80; everything else zero. */
export const FCW_INIT = 0x37f;
export const MXCSR_INIT = 0x1f80;

/**
 * An image in the init state: XSTATE_BV = 0, legacy area with the init FCW/MXCSR (as KVM_GET_XSAVE
 * fills absent FP/SSE, docs/facts.md#kvm-get-xsave), MXCSR_MASK as given (CPU-specific; 0xFFFF by default).
 */
export function initXsaveImage(
  profile: CpuProfile,
  opts: { format?: XsaveFormat; features?: bigint; size?: number; mxcsrMask?: number } = {},
): XsaveImage {
  const format = opts.format ?? "standard";
  const features = (opts.features ?? profile.supportedXcr0) | XFEATURE_MASK_FPSSE;
  const layout = xsaveLayout(profile, features, format);
  const img = new XsaveImage(new Uint8Array(Math.max(layout.size, opts.size ?? 0)), layout, profile.name);
  img.fcw = FCW_INIT;
  img.mxcsr = MXCSR_INIT;
  img.mxcsrMask = opts.mxcsrMask ?? 0xffff;
  if (format === "compacted") img.xcompBv = COMPACTED_BIT | features;
  return img;
}

// ---------------------------------------------------------------------------------------------
// JSON (the CLI's decode output and encode input): everything needed to rebuild the exact bytes.

export interface XsaveJsonComponent {
  index: number;
  name: string;
  offset: number;
  size: number;
  present: boolean;
  /** Component 19: R16..R31 as "0x…" strings. */
  registers?: Record<string, string>;
  /** Other components ≥ 2: the bytes as hex, or `zero: true` when all zero. */
  bytes?: string;
  zero?: true;
}

export interface XsaveJson {
  schemaVersion: 1;
  profile: string;
  format: XsaveFormat;
  size: number;
  header: { xstateBv: string; xcompBv: string; reserved: string };
  legacy: {
    fcw: number; fsw: number; ftw: number; fop: number; fip: string; fdp: string; mxcsr: number; mxcsrMask: number;
    /** ST0..7 slots, 16 bytes each (80-bit value + 6 reserved bytes). */
    st: string[];
    xmm: string[];
    /** Byte 5 (reserved) and bytes 416..511 (reserved / software-available), kept for byte-exactness. */
    reserved5: number;
    tail: string;
  };
  components: XsaveJsonComponent[];
  /** Bytes of the extended region that no listed component covers (gaps, trailing bytes). */
  gaps: { offset: number; size: number; bytes?: string; zero?: true }[];
}

const isZero = (b: Uint8Array): boolean => {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
};

function coveredRanges(layout: XsaveLayout): [number, number][] {
  return layout.components
    .filter((c) => c.index >= 2)
    .map((c): [number, number] => [c.offset, c.offset + c.size])
    .sort((a, b) => a[0] - b[0]);
}

export function xsaveToJson(image: XsaveImage): XsaveJson {
  const b = image.bytes;
  const components: XsaveJsonComponent[] = image.components().map((c) => {
    const j: XsaveJsonComponent = { index: c.index, name: c.name, offset: c.offset, size: c.size, present: c.present };
    if (c.index < 2) return j;
    if (c.index === XFEATURE.APX && c.size === 128) {
      const regs = image.apxRegisters()!;
      j.registers = Object.fromEntries(regs.map((v, k) => [GPR_NAMES[16 + k]!, u64Hex(v)]));
    } else if (isZero(c.bytes)) j.zero = true;
    else j.bytes = bytesToHex(c.bytes);
    return j;
  });
  const gaps: XsaveJson["gaps"] = [];
  let pos = XSAVE_EXTENDED_OFFSET;
  const pushGap = (from: number, to: number) => {
    if (to <= from) return;
    const slice = b.subarray(from, to);
    gaps.push(isZero(slice) ? { offset: from, size: to - from, zero: true } : { offset: from, size: to - from, bytes: bytesToHex(slice) });
  };
  for (const [s, e] of coveredRanges(image.layout)) {
    pushGap(pos, s);
    pos = Math.max(pos, e);
  }
  pushGap(pos, b.length);
  return {
    schemaVersion: 1,
    profile: image.profileName,
    format: image.format,
    size: image.size,
    header: { xstateBv: u64Hex(image.xstateBv), xcompBv: u64Hex(image.xcompBv), reserved: bytesToHex(image.headerReserved) },
    legacy: {
      fcw: image.fcw, fsw: image.fsw, ftw: image.ftw, fop: image.fop, fip: u64Hex(image.fip), fdp: u64Hex(image.fdp),
      mxcsr: image.mxcsr, mxcsrMask: image.mxcsrMask,
      st: Array.from({ length: 8 }, (_, k) => bytesToHex(image.st(k))),
      xmm: Array.from({ length: 16 }, (_, k) => bytesToHex(image.xmm(k))),
      reserved5: b[LEGACY.reserved5]!,
      tail: bytesToHex(b.subarray(LEGACY.tail, LEGACY.end)),
    },
    components,
    gaps,
  };
}

// --- JSON → image, with an InputError naming the JSON path of whatever is wrong.

type Obj = Record<string, unknown>;
function obj(v: unknown, path: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new InputError(`${path}: expected an object`);
  return v as Obj;
}
function uint(v: unknown, path: string, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) throw new InputError(`${path}: expected an integer 0..${max}, got ${JSON.stringify(v)}`);
  return v;
}
function hexOf(v: unknown, path: string, len: number): Uint8Array {
  if (typeof v !== "string") throw new InputError(`${path}: expected a hex string`);
  const b = hexToBytes(v, path);
  if (b.length !== len) throw new InputError(`${path}: expected ${len} bytes, got ${b.length}`);
  return b;
}
function arr(v: unknown, path: string, len?: number): unknown[] {
  if (!Array.isArray(v)) throw new InputError(`${path}: expected an array`);
  if (len !== undefined && v.length !== len) throw new InputError(`${path}: expected ${len} entries, got ${v.length}`);
  return v;
}
function region(bytes: Uint8Array, offset: number, size: number, path: string): void {
  if (offset < XSAVE_EXTENDED_OFFSET || offset + size > bytes.length) {
    throw new InputError(`${path}: region ${offset}..${offset + size} lies outside the extended area 576..${bytes.length}`);
  }
}

/**
 * Rebuilds the exact bytes from xsaveToJson's output (the inverse: xsaveFromJson(xsaveToJson(i)) has
 * the same bytes as i). Offsets come from the JSON itself, so no profile is needed.
 */
export function xsaveFromJson(json: unknown, where = "XSAVE JSON"): XsaveImage {
  const j = obj(json, where);
  if (j.schemaVersion !== 1) throw new InputError(`${where}.schemaVersion: expected 1, got ${JSON.stringify(j.schemaVersion)}`);
  const format = j.format;
  if (format !== "standard" && format !== "compacted") throw new InputError(`${where}.format: expected "standard" or "compacted"`);
  const size = uint(j.size, `${where}.size`, 1 << 24);
  if (size < XSAVE_EXTENDED_OFFSET) throw new InputError(`${where}.size: ${size} is smaller than the legacy area and header (576)`);
  const bytes = new Uint8Array(size);
  const dv = new DataView(bytes.buffer);
  const h = obj(j.header, `${where}.header`);
  dv.setBigUint64(XSTATE_BV, parseU64(h.xstateBv, `${where}.header.xstateBv`), true);
  dv.setBigUint64(XCOMP_BV, parseU64(h.xcompBv, `${where}.header.xcompBv`), true);
  bytes.set(hexOf(h.reserved, `${where}.header.reserved`, HEADER_RESERVED_SIZE), HEADER_RESERVED);
  const l = obj(j.legacy, `${where}.legacy`);
  const lp = `${where}.legacy`;
  dv.setUint16(LEGACY.fcw, uint(l.fcw, `${lp}.fcw`, 0xffff), true);
  dv.setUint16(LEGACY.fsw, uint(l.fsw, `${lp}.fsw`, 0xffff), true);
  bytes[LEGACY.ftw] = uint(l.ftw, `${lp}.ftw`, 0xff);
  bytes[LEGACY.reserved5] = uint(l.reserved5, `${lp}.reserved5`, 0xff);
  dv.setUint16(LEGACY.fop, uint(l.fop, `${lp}.fop`, 0xffff), true);
  dv.setBigUint64(LEGACY.fip, parseU64(l.fip, `${lp}.fip`), true);
  dv.setBigUint64(LEGACY.fdp, parseU64(l.fdp, `${lp}.fdp`), true);
  dv.setUint32(LEGACY.mxcsr, uint(l.mxcsr, `${lp}.mxcsr`, 0xffff_ffff), true);
  dv.setUint32(LEGACY.mxcsrMask, uint(l.mxcsrMask, `${lp}.mxcsrMask`, 0xffff_ffff), true);
  arr(l.st, `${lp}.st`, 8).forEach((s, k) => bytes.set(hexOf(s, `${lp}.st[${k}]`, 16), LEGACY.st + 16 * k));
  arr(l.xmm, `${lp}.xmm`, 16).forEach((s, k) => bytes.set(hexOf(s, `${lp}.xmm[${k}]`, 16), LEGACY.xmm + 16 * k));
  bytes.set(hexOf(l.tail, `${lp}.tail`, LEGACY.end - LEGACY.tail), LEGACY.tail);

  const entries: XsaveLayoutEntry[] = [];
  let features = 0n;
  arr(j.components, `${where}.components`).forEach((raw, n) => {
    const p = `${where}.components[${n}]`;
    const c = obj(raw, p);
    const index = uint(c.index, `${p}.index`, 62);
    const offset = uint(c.offset, `${p}.offset`, size);
    const csize = uint(c.size, `${p}.size`, size);
    const name = typeof c.name === "string" ? c.name : componentName(index);
    features |= xfeatureMask(index);
    entries.push({ index, name, offset, size: csize });
    if (index < 2) return;
    region(bytes, offset, csize, p);
    if (c.registers !== undefined) {
      const regs = obj(c.registers, `${p}.registers`);
      if (csize !== 128) throw new InputError(`${p}.registers: only a 128-byte APX component carries registers`);
      for (let k = 0; k < 16; k++) {
        const r = GPR_NAMES[16 + k]!;
        dv.setBigUint64(offset + 8 * k, parseU64(regs[r], `${p}.registers.${r}`), true);
      }
    } else if (c.bytes !== undefined) bytes.set(hexOf(c.bytes, `${p}.bytes`, csize), offset);
    else if (c.zero !== true) throw new InputError(`${p}: needs "registers", "bytes" or "zero": true`);
  });
  arr(j.gaps ?? [], `${where}.gaps`).forEach((raw, n) => {
    const p = `${where}.gaps[${n}]`;
    const g = obj(raw, p);
    const offset = uint(g.offset, `${p}.offset`, size);
    const gsize = uint(g.size, `${p}.size`, size);
    region(bytes, offset, gsize, p);
    if (g.bytes !== undefined) bytes.set(hexOf(g.bytes, `${p}.bytes`, gsize), offset);
    else if (g.zero !== true) throw new InputError(`${p}: needs "bytes" or "zero": true`);
  });
  const layoutSize = entries.reduce((m, e) => (e.index >= 2 ? Math.max(m, e.offset + e.size) : m), XSAVE_EXTENDED_OFFSET);
  const layout: XsaveLayout = { format, features, size: layoutSize, components: entries.sort((a, b) => a.index - b.index) };
  return new XsaveImage(bytes, layout, typeof j.profile === "string" ? j.profile : "custom");
}
