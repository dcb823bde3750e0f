/**
 * Where each state component sits in an XSAVE image, for any requested-feature bitmap, in both
 * formats (SDM 13.4): standard = the offsets CPUID.(0xD,i).EBX gives; compacted = packed in
 * ascending component order from byte 576, rounding up to 64 where CPUID.(0xD,i).ECX[1] says so.
 * APX (19) reuses MPX's 960..1087 in the standard format; they never coexist
 * (docs/facts.md#apx-xsave-component, docs/facts.md#apx-mpx-exclusion).
 */
import { InputError } from "../errors.js";
import { profileComponent, type CpuProfile } from "./cpu-profiles.js";
import { XSAVE_EXTENDED_OFFSET } from "./xsave-components.js";
import { xfeatureMask, XFEATURE_MASK, XFEATURE_MASK_MPX } from "./xfeatures.js";

export type XsaveFormat = "standard" | "compacted";

export interface XsaveLayoutEntry {
  readonly index: number;
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

export interface XsaveLayout {
  readonly format: XsaveFormat;
  /** The requested-feature bitmap the layout was built for (XCR0, or XCOMP_BV[62:0] when compacted). */
  readonly features: bigint;
  /** Bytes an image with these features needs (at least 576: legacy area + header). */
  readonly size: number;
  /** Components in ascending index order; FP and SSE describe their slices of the legacy area. */
  readonly components: readonly XsaveLayoutEntry[];
}

const cache = new WeakMap<CpuProfile, Map<string, XsaveLayout>>();

/** The layout of `features` for `profile`; InputError for a component the profile does not enumerate. */
export function xsaveLayout(profile: CpuProfile, features: bigint, format: XsaveFormat): XsaveLayout {
  // Fast path for the codec's hot loop: the same profile asks for the same layout again.
  const last = lastLayout.get(profile);
  if (last && last.features === features && last.format === format) return last;
  const layout = cachedLayout(profile, features, format);
  lastLayout.set(profile, layout);
  return layout;
}

const lastLayout = new WeakMap<CpuProfile, XsaveLayout>();

function cachedLayout(profile: CpuProfile, features: bigint, format: XsaveFormat): XsaveLayout {
  const key = `${format}:${features.toString(16)}`;
  let perProfile = cache.get(profile);
  const hit = perProfile?.get(key);
  if (hit) return hit;
  const layout = buildLayout(profile, features, format);
  if (!perProfile) cache.set(profile, (perProfile = new Map()));
  perProfile.set(key, layout);
  return layout;
}

function buildLayout(profile: CpuProfile, features: bigint, format: XsaveFormat): XsaveLayout {
  if (features < 0n || features >> 63n !== 0n) {
    throw new InputError(`feature bitmap 0x${features.toString(16)} is not a 63-bit component mask`);
  }
  if (format === "standard" && (features & XFEATURE_MASK_MPX) !== 0n && (features & XFEATURE_MASK.APX) !== 0n) {
    throw new InputError("MPX and APX cannot be laid out together: both use bytes 960..1087 of the standard format");
  }
  const components: XsaveLayoutEntry[] = [];
  let end = XSAVE_EXTENDED_OFFSET;
  let cursor = XSAVE_EXTENDED_OFFSET;
  for (let i = 0; i < 63; i++) {
    if ((features & xfeatureMask(i)) === 0n) continue;
    const c = profileComponent(profile, i);
    if (!c) throw new InputError(`XSAVE component ${i} is not enumerated by CPU profile "${profile.name}"`);
    if (i < 2) {
      components.push({ index: i, name: c.name, offset: c.standardOffset ?? 0, size: c.size });
      continue;
    }
    if (format === "standard") {
      if (c.standardOffset === undefined) {
        throw new InputError(`supervisor component ${i} (${c.name}) has no place in the standard format`);
      }
      components.push({ index: i, name: c.name, offset: c.standardOffset, size: c.size });
      end = Math.max(end, c.standardOffset + c.size);
    } else {
      if (c.align64) cursor = (cursor + 63) & ~63;
      components.push({ index: i, name: c.name, offset: cursor, size: c.size });
      cursor += c.size;
      end = cursor;
    }
  }
  return { format, features, size: end, components };
}

/** The entry for component `index`, if the layout has it. */
export function layoutEntry(layout: XsaveLayout, index: number): XsaveLayoutEntry | undefined {
  return layout.components.find((c) => c.index === index);
}
