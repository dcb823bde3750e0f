/**
 * The vCPU ioctl semantics x86.c owns (docs/facts.md#xsave-uapi), as operations on the model's vCPU —
 * no binary structs (the uapi package adds those on top). Each returns `{ ok: true, value }` or
 * `{ ok: false, errno, reason }`. Component 19 of KVM_GET/SET_XSAVE is synthesised from the design's
 * EGPR home; KVM_SET_XSAVE with XSTATE_BV[19]=0 follows ASSUMPTIONS.setXsaveApxAbsent.
 */
import { XsaveImage, FCW_INIT, MXCSR_INIT } from "../cpu/xsave-image.js";
import { xsaveLayout } from "../cpu/xsave-layout.js";
import { KVM_XSAVE_SIZE, XSAVE_EXTENDED_OFFSET } from "../cpu/xsave-components.js";
import { XFEATURE, XFEATURE_MASK, XFEATURE_MASK_FPSSE } from "../cpu/xfeatures.js";
import { Tag, type ProvenanceTag } from "../cpu/provenance.js";
import { val, vid } from "../cpu/values.js";
import { profileHas, type CpuProfile } from "../cpu/cpu-profiles.js";
import type { ModelOptions } from "../model-options.js";
import { gprRead, gprWrite, ripRead, ripWrite, rspRead, rspWrite, type RegCacheCtx } from "./register-cache.js";
import { vcpuGuestSupportedXcr0, kvmSetXcr } from "./xcr.js";
import type { VcpuState } from "./vcpu.js";
import type { EgprHome } from "./designs.js";

export type Errno = "EINVAL" | "EFAULT" | "E2BIG" | "ENXIO";
export type UapiResult<T> = { ok: true; value: T } | { ok: false; errno: Errno; reason: string };

const ok = <T>(value: T): UapiResult<T> => ({ ok: true, value });
const fail = <T>(errno: Errno, reason: string): UapiResult<T> => ({ ok: false, errno, reason });

/** What a vCPU ioctl needs: the vCPU with its register cache door, the host profile, KVM caps, options. */
export interface VcpuIoctlCtx extends RegCacheCtx {
  readonly profile: CpuProfile;
  /** KVM-supported XCR0 (kvm_caps.supported_xcr0). */
  readonly supportedXcr0: bigint;
  /** Host XCR0 = the host kernel's fpu_user_cfg.max_features; GET_XSAVE reports it in bytes 464..471. */
  readonly hostXcr0: bigint;
  readonly options: ModelOptions;
  readonly egprHome: EgprHome;
  /** True when the vCPU's state is protected (SEV-ES/TDX): state ioctls fail with EINVAL. */
  readonly protectedState: boolean;
}

/**
 * The host's MXCSR mask (mxcsr_feature_mask): KVM_SET_XSAVE rejects MXCSR bits outside it, and it is
 * the MXCSR_MASK field of init_fpstate (an FXSAVE of the init state), which GET reports while neither
 * SSE nor YMM is in XSTATE_BV (docs/facts.md#kvm-get-xsave).
 */
const MXCSR_FEATURE_MASK = 0xffff;
const PKRU_MASK = XFEATURE_MASK.PKRU;
/** MXCSR and MXCSR_MASK live in the legacy area but belong to SSE *and* YMM (copy_uabi_to_xstate, __copy_xstate_to_uabi_buf). */
const MXCSR_FEATURES = XFEATURE_MASK.SSE | XFEATURE_MASK.YMM;
/** fxregs_state: padding 416..463, then the 48 software-reserved bytes (sw_reserved) 464..511. */
const FX_PADDING_OFFSET = 416;
const FX_SW_BYTES_OFFSET = 464;
const FX_SW_BYTES_END = 512;

/**
 * The sw_reserved bytes __copy_xstate_to_uabi_buf writes: the global xstate_fx_sw_bytes (ptrace.c),
 * whose only non-zero word is USER_XSTATE_XCR0_WORD (0) = fpu_user_cfg.max_features, set once by
 * update_regset_xstate_info — the host's user xfeatures, not the guest's; no FP_XSTATE_MAGIC1 or size
 * (those are the signal frame's fx_sw_reserved, a different structure).
 */
function writeFxSwBytes(image: XsaveImage, hostXcr0: bigint): void {
  image.bytes.fill(0, FX_PADDING_OFFSET, FX_SW_BYTES_END);
  // The host kernel's XCR0 is exactly fpu_user_cfg.max_features (fpu__init_cpu_xstate loads it).
  new DataView(image.bytes.buffer, image.bytes.byteOffset).setBigUint64(FX_SW_BYTES_OFFSET, hostXcr0, true);
}

/**
 * boot_cpu_has(X86_FEATURE_XSAVE) for the host: CPUID.1:ECX.XSAVE of the profile (KVM_GET_SUPPORTED_CPUID
 * passes the host's bit through). Without it KVM has no XCRs and KVM_GET/SET_XSAVE carry the FXSAVE
 * area as it is (docs/facts.md#kvm-xcrs, docs/facts.md#kvm-get-xsave).
 */
export function hostHasXsave(profile: CpuProfile): boolean {
  let has = hostXsave.get(profile);
  if (has === undefined) hostXsave.set(profile, (has = profileHas(profile, "XSAVE")));
  return has;
}
const hostXsave = new WeakMap<CpuProfile, boolean>();

/** The uABI image features: supported XCR0 without supervisor bits, plus FP|SSE. */
const uabiFeatures = (ctx: VcpuIoctlCtx): bigint => (ctx.supportedXcr0 | XFEATURE_MASK_FPSSE) & ~ctx.profile.supportedXss;

/** KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2): max(4096, standard size of the supported features). */
export function kvmXsave2Size(ctx: Pick<VcpuIoctlCtx, "profile" | "supportedXcr0">): number {
  const f = (ctx.supportedXcr0 | XFEATURE_MASK_FPSSE) & ~ctx.profile.supportedXss;
  return Math.max(KVM_XSAVE_SIZE, xsaveLayout(ctx.profile, f, "standard").size);
}

/** Interned non-APX image bytes userspace set (so states stay small and comparable). */
const restTable: { bytes: Uint8Array; xstateBv: bigint }[] = [{ bytes: new Uint8Array(0), xstateBv: 0n }];
const restIndex = new Map<string, number>();
function internRest(bytes: Uint8Array, xstateBv: bigint): number {
  const k = `${xstateBv.toString(16)}:${Buffer.from(bytes).toString("base64")}`;
  let id = restIndex.get(k);
  if (id === undefined) {
    id = restTable.length;
    restTable.push({ bytes, xstateBv });
    restIndex.set(k, id);
  }
  return id;
}

/** R16..R31 of the vCPU as the design keeps them (outside KVM_RUN: regs[] or the fpstate buffer). */
export function egprsOf(v: VcpuState, home: EgprHome): { values: bigint[]; tags: ProvenanceTag[]; present: boolean } {
  if (home === "regs" && v.layout.egprsInRegs) {
    const r = v.regs;
    return { values: Array.from({ length: 16 }, (_, k) => r.get(16 + k)), tags: Array.from({ length: 16 }, (_, k) => r.tag(16 + k)), present: true };
  }
  const present = v.fpstate.apxPresent;
  return present
    ? { values: v.fpstate.egpr.toArray(), tags: v.fpstate.egpr.tags(), present }
    : { values: new Array<bigint>(16).fill(0n), tags: new Array<number>(16).fill(Tag.init), present };
}

/**
 * What KVM_GET_XSAVE reports, before it is laid out as bytes: XSTATE_BV, the fpstate's other bytes
 * (interned), component 19 from the EGPR home and PKRU. The checker's events use this view directly;
 * `kvmGetXsave` lays it out as the uABI image (standard format).
 */
export interface XsaveView {
  xstateBv: bigint;
  /** Interned non-APX bytes (0 = init). */
  restId: number;
  /** Component 19 (value ids and tags) when XSTATE_BV[19] is set. */
  egpr: { ids: number[]; tags: ProvenanceTag[] } | undefined;
  /** PKRU when XSTATE_BV[9] is set. */
  pkru: number | undefined;
}

/**
 * KVM_GET_XSAVE's semantics: XSTATE_BV = the fpstate header's xfeatures ∩ (guest-supported | FP | SSE)
 * — PKRU only once KVM_SET_XSAVE set it, not on a fresh vCPU; component 19 synthesised from the EGPR
 * home (regs[] designs always report it, the fpstate design when its buffer holds it); PKRU from KVM's
 * value. `size` is the caller's buffer (-EINVAL when the layout does not fit). Not modelled: the save
 * when KVM_RUN puts the guest FPU, which can add PKRU (and FP, SSE, …) to the header.
 */
export function kvmGetXsaveView(ctx: VcpuIoctlCtx, size: number = KVM_XSAVE_SIZE): UapiResult<XsaveView> {
  if (ctx.protectedState) return fail("EINVAL", "protected guest state");
  const g = uabiGeometry(ctx);
  if (g.size > size) return fail("EINVAL", `uABI XSAVE size ${g.size} exceeds the ${size}-byte buffer (use KVM_GET_XSAVE2)`);
  const v = ctx.vcpu;
  // Without XSAVE the image is the FXSAVE area with a header saying FP|SSE (fpu_copy_guest_fpstate_to_uabi).
  if (!hostHasXsave(ctx.profile)) return ok({ xstateBv: XFEATURE_MASK_FPSSE, restId: v.fpstate.restId, egpr: undefined, pkru: undefined });
  const rest = restTable[v.fpstate.restId]!;
  const mask = vcpuGuestSupportedXcr0(v, ctx.supportedXcr0) | XFEATURE_MASK_FPSSE;
  // The fpstate header's xfeatures: PKRU among them only once KVM_SET_XSAVE put it there.
  let xstateBv = (rest.xstateBv | (v.fpstate.xstateBv & ~XFEATURE_MASK.APX)) & mask & ~XFEATURE_MASK.APX;
  let egpr: XsaveView["egpr"];
  if ((mask & XFEATURE_MASK.APX) !== 0n && g.hasApx) {
    const e = egprsInUapi(ctx);
    if (e.present) {
      xstateBv |= XFEATURE_MASK.APX;
      egpr = { ids: e.ids, tags: e.tags };
    }
  }
  // The PKRU component carries KVM's value, not the buffer's (__copy_xstate_to_uabi_buf's pkru_val).
  let pkru: number | undefined;
  if ((xstateBv & PKRU_MASK) !== 0n) {
    if (g.hasPkru) pkru = v.pkru;
    else xstateBv &= ~PKRU_MASK;
  }
  return ok({ xstateBv, restId: v.fpstate.restId, egpr, pkru });
}

/** The uABI layout facts of a vCPU ioctl context, computed once per (profile, supported XCR0). */
interface UabiGeometry {
  readonly features: bigint;
  readonly size: number;
  readonly hasApx: boolean;
  readonly hasPkru: boolean;
}
const geometries = new WeakMap<CpuProfile, Map<bigint, UabiGeometry>>();
function uabiGeometry(ctx: VcpuIoctlCtx): UabiGeometry {
  let byXcr0 = geometries.get(ctx.profile);
  if (!byXcr0) geometries.set(ctx.profile, (byXcr0 = new Map()));
  let g = byXcr0.get(ctx.supportedXcr0);
  if (!g) {
    const features = uabiFeatures(ctx);
    const layout = xsaveLayout(ctx.profile, features, "standard");
    g = {
      features,
      size: layout.size,
      hasApx: layout.components.some((c) => c.index === XFEATURE.APX),
      hasPkru: layout.components.some((c) => c.index === XFEATURE.PKRU),
    };
    byXcr0.set(ctx.supportedXcr0, g);
  }
  return g;
}

/**
 * KVM_GET_XSAVE (size 4096) / KVM_GET_XSAVE2 (size from kvmXsave2Size): a standard-format image.
 * XSTATE_BV = the fpstate header's xfeatures ∩ (guest-supported | FP | SSE); absent components
 * zero-filled; absent FP/SSE legacy fields from the init state (MXCSR and MXCSR_MASK keyed on SSE|YMM);
 * XCOMP_BV and reserved header bytes 0; legacy bytes 464..471 = host user xfeatures (xstate_fx_sw_bytes); PKRU from KVM's value;
 * component 19 synthesised from the EGPR home. Also returns the EGPR tags (for the leak monitor).
 */
export function kvmGetXsave(ctx: VcpuIoctlCtx, size: number = KVM_XSAVE_SIZE): UapiResult<{ image: XsaveImage; egprTags: ProvenanceTag[] }> {
  const r = kvmGetXsaveView(ctx, size);
  if (!r.ok) return r;
  const view = r.value;
  const layout = xsaveLayout(ctx.profile, uabiFeatures(ctx), "standard");
  const image = new XsaveImage(new Uint8Array(size), layout, ctx.profile.name);
  const rest = restTable[view.restId]!;
  const bv = view.xstateBv;
  if (!hostHasXsave(ctx.profile)) {
    writeFxsaveArea(image, rest.bytes);
    image.xstateBv = bv;
    return ok({ image, egprTags: new Array<number>(16).fill(Tag.init) });
  }
  // Built fresh: the legacy area and present components come from the fpstate; header, absent
  // components and every gap between components are zero (copy_xstate_to_uabi_buf's fill_gap).
  if (rest.bytes.length) {
    image.bytes.set(rest.bytes.subarray(0, 512));
    for (const c of layout.components) {
      if (c.index >= 2 && (bv & (1n << BigInt(c.index))) !== 0n && c.offset + c.size <= rest.bytes.length) {
        image.bytes.set(rest.bytes.subarray(c.offset, c.offset + c.size), c.offset);
      }
    }
  }
  if ((bv & XFEATURE_MASK.FP) === 0n) {
    image.bytes.fill(0, 0, 24);
    image.bytes.fill(0, 32, 160);
    image.fcw = FCW_INIT;
  }
  if ((bv & XFEATURE_MASK.SSE) === 0n) image.bytes.fill(0, 160, 416);
  // MXCSR and MXCSR_MASK (8 bytes) come from the fpstate when SSE *or* YMM is in the header — as
  // KVM_SET_XSAVE copied them from the image (copy_uabi_to_xstate) — else from init_fpstate.
  if ((bv & MXCSR_FEATURES) === 0n || !rest.bytes.length) {
    image.mxcsr = MXCSR_INIT;
    image.mxcsrMask = MXCSR_FEATURE_MASK;
  }
  // Bytes 416..511 are never the fpstate's: padding zero, sw_reserved from xstate_fx_sw_bytes.
  writeFxSwBytes(image, ctx.hostXcr0);
  if (view.egpr) view.egpr.ids.forEach((id, k) => image.setApxRegister(k, val(id)));
  if (view.pkru !== undefined) new DataView(image.bytes.buffer).setUint32(image.component(XFEATURE.PKRU)!.offset, view.pkru >>> 0, true);
  image.xstateBv = bv;
  image.xcompBv = 0n;
  return ok({ image, egprTags: view.egpr?.tags ?? new Array<number>(16).fill(Tag.init) });
}

/**
 * A host without XSAVE: the guest fpstate is a bare FXSAVE area, copied to and from userspace as it
 * is — every legacy byte, MXCSR_MASK and bytes 416..511 included. A fresh vCPU's holds FCW 0x37f and
 * MXCSR 0x1f80, the rest zero (fpstate_init_fxstate: no MXCSR_MASK).
 */
function writeFxsaveArea(image: XsaveImage, fxsave: Uint8Array): void {
  if (fxsave.length) {
    image.bytes.set(fxsave.subarray(0, FX_SW_BYTES_END));
    return;
  }
  image.fcw = FCW_INIT;
  image.mxcsr = MXCSR_INIT;
}

/**
 * Where GET reads R16..R31, as value ids: regs[] designs always report them (Chang's diff); the
 * fpstate design reports its buffer (through REX2 MOVs while the guest FPU is loaded).
 */
function egprsInUapi(ctx: VcpuIoctlCtx): { ids: number[]; tags: ProvenanceTag[]; present: boolean } {
  const v = ctx.vcpu;
  const ids: number[] = new Array<number>(16);
  const tags: ProvenanceTag[] = new Array<number>(16);
  if (ctx.egprHome === "regs" && v.layout.egprsInRegs) {
    const r = v.regs;
    for (let k = 0; k < 16; k++) [ids[k], tags[k]] = [r.id(16 + k), r.tag(16 + k)];
    return { ids, tags, present: true };
  }
  if (ctx.egprHome !== "regs" && ctx.egpr) {
    for (let k = 0; k < 16; k++) {
      const x = ctx.egpr.read(16 + k);
      [ids[k], tags[k]] = [vid(x.value), x.tag];
    }
    return { ids, tags, present: v.fpstate.apxPresent };
  }
  const present = v.fpstate.apxPresent;
  const f = v.fpstate.egpr;
  for (let k = 0; k < 16; k++) [ids[k], tags[k]] = present ? [f.id(k), f.tag(k)] : [0, Tag.init];
  return { ids, tags, present };
}

/** What KVM_SET_XSAVE takes from an image once it is validated: the parts the model keeps. */
export interface XsaveUpdate {
  xstateBv: bigint;
  /** Interned non-APX bytes (absent components zeroed; 0 = init). */
  restId: number;
  /** PKRU when XSTATE_BV[9] is set. */
  pkru: number | undefined;
  /** R16..R31 when XSTATE_BV[19] is set and the layout has component 19. */
  apx: bigint[] | undefined;
}

/**
 * KVM_SET_XSAVE's validation (copy_uabi_to_xstate / validate_user_xstate_header): -EINVAL if XSTATE_BV
 * ⊄ KVM-supported XCR0 (supported, not guest-supported), XCOMP_BV ≠ 0, a reserved header byte ≠ 0, or
 * MXCSR has reserved bits (when FP/SSE/YMM present). Returns the update the image asks for.
 */
export function parseXsaveUpdate(ctx: VcpuIoctlCtx, bytes: Uint8Array): UapiResult<XsaveUpdate> {
  if (ctx.protectedState) return fail("EINVAL", "protected guest state");
  if (bytes.length < XSAVE_EXTENDED_OFFSET) return fail("EFAULT", `image of ${bytes.length} bytes is shorter than the header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const xstateBv = dv.getBigUint64(512, true);
  if (!hostHasXsave(ctx.profile)) return parseFxsaveUpdate(bytes, dv, xstateBv);
  const xcompBv = dv.getBigUint64(520, true);
  if ((xstateBv & ~(ctx.supportedXcr0 | XFEATURE_MASK_FPSSE)) !== 0n) {
    return fail("EINVAL", `XSTATE_BV 0x${xstateBv.toString(16)} has bits outside KVM-supported XCR0 0x${ctx.supportedXcr0.toString(16)}`);
  }
  if (xcompBv !== 0n) return fail("EINVAL", `XCOMP_BV 0x${xcompBv.toString(16)} is not 0`);
  for (let i = 528; i < 576; i++) if (bytes[i] !== 0) return fail("EINVAL", `reserved header byte ${i} is not 0`);
  if ((xstateBv & (XFEATURE_MASK_FPSSE | XFEATURE_MASK.YMM)) !== 0n) {
    const mxcsr = dv.getUint32(24, true);
    if ((mxcsr & ~MXCSR_FEATURE_MASK) !== 0) return fail("EINVAL", `MXCSR 0x${mxcsr.toString(16)} has reserved bits`);
  }
  const layout = xsaveLayout(ctx.profile, uabiFeatures(ctx), "standard");
  const apxEntry = layout.components.find((c) => c.index === XFEATURE.APX);
  const pkruEntry = layout.components.find((c) => c.index === XFEATURE.PKRU);
  // Keep everything but component 19 and PKRU as the fpstate "rest" (components absent → init = zeros).
  const rest = bytes.slice(0, Math.min(bytes.length, layout.size));
  for (const c of layout.components) {
    const absent = c.index >= 2 && (xstateBv & (1n << BigInt(c.index))) === 0n;
    if (absent || c.index === XFEATURE.APX || c.index === XFEATURE.PKRU) rest.fill(0, c.offset, Math.min(rest.length, c.offset + c.size));
  }
  // Bytes 416..511 (padding, sw_reserved) and the header never reach the fpstate (copy_uabi_to_xstate).
  rest.fill(0, FX_PADDING_OFFSET, XSAVE_EXTENDED_OFFSET);
  // The header keeps the PKRU bit (copy_uabi_to_xstate); its value goes to KVM's pkru, not the rest.
  const restBv = xstateBv & ~XFEATURE_MASK.APX;
  const restId = restBv === 0n && rest.every((b, i) => i >= 512 || b === 0) ? 0 : internRest(rest, restBv);
  const pkru = pkruEntry && (xstateBv & PKRU_MASK) !== 0n ? dv.getUint32(pkruEntry.offset, true) : undefined;
  const apx =
    (xstateBv & XFEATURE_MASK.APX) !== 0n && apxEntry !== undefined
      ? Array.from({ length: 16 }, (_, k) => dv.getBigUint64(apxEntry.offset + 8 * k, true))
      : undefined;
  return ok({ xstateBv, restId, pkru, apx });
}

/**
 * KVM_SET_XSAVE on a host without XSAVE (fpu_copy_uabi_to_guest_fpstate): -EINVAL if XSTATE_BV has a
 * bit beyond FP|SSE or MXCSR has reserved bits, whatever XSTATE_BV says; XCOMP_BV and the reserved
 * header bytes are not looked at; then the FXSAVE area (bytes 0..511) is taken as it is.
 */
function parseFxsaveUpdate(bytes: Uint8Array, dv: DataView, xstateBv: bigint): UapiResult<XsaveUpdate> {
  if ((xstateBv & ~XFEATURE_MASK_FPSSE) !== 0n) return fail("EINVAL", `XSTATE_BV 0x${xstateBv.toString(16)} has bits beyond FP|SSE on a host without XSAVE`);
  const mxcsr = dv.getUint32(24, true);
  if ((mxcsr & ~MXCSR_FEATURE_MASK) !== 0) return fail("EINVAL", `MXCSR 0x${mxcsr.toString(16)} has reserved bits`);
  const restId = internRest(bytes.slice(0, FX_SW_BYTES_END), XFEATURE_MASK_FPSSE);
  return ok({ xstateBv: XFEATURE_MASK_FPSSE, restId, pkru: undefined, apx: undefined });
}

/**
 * KVM_SET_XSAVE's effect: absent components become init; PKRU changes only when its bit is set;
 * component 19 goes to the EGPR home. With XSTATE_BV[19] clear, KVM as queued (v4) leaves regs[16..31]
 * alone, while an fpstate home puts component 19 in its init state like every absent component
 * (copy_uabi_to_xstate) — docs/facts.md#apx-uapi-set-absent. Whether the guest should see its old
 * values or zeros then is the open question (the setXsaveApxAbsent assumption, apply-event.ts).
 */
export function applyXsaveUpdate(ctx: VcpuIoctlCtx, u: XsaveUpdate, tag: ProvenanceTag): { apxPresent: boolean } {
  const v = ctx.vcpu;
  v.fpstate.restId = u.restId;
  if (u.pkru !== undefined) v.pkru = u.pkru;
  if (u.apx) writeEgprs(ctx, u.apx, tag);
  else if (!(ctx.egprHome === "regs" && v.layout.egprsInRegs)) writeEgprs(ctx, new Array<bigint>(16).fill(0n), Tag.init, true);
  return { apxPresent: u.apx !== undefined };
}

/** KVM_SET_XSAVE: parseXsaveUpdate, then applyXsaveUpdate. */
export function kvmSetXsave(ctx: VcpuIoctlCtx, bytes: Uint8Array, tag: ProvenanceTag): UapiResult<{ apxPresent: boolean }> {
  const u = parseXsaveUpdate(ctx, bytes);
  return u.ok ? ok(applyXsaveUpdate(ctx, u.value, tag)) : u;
}

/**
 * The update KVM_SET_XSAVE would take from the image KVM_GET_XSAVE reports for `view`, with XSTATE_BV
 * replaced by `xstateBv` and component 19 by `apx` — what a VMM does when it edits a saved image. The
 * non-APX part goes through the real GET layout and SET parse once per (rest, XSTATE_BV) and is
 * remembered: the checker's set-xsave and migrate events run it millions of times.
 */
export function xsaveUpdateFromView(ctx: VcpuIoctlCtx, view: XsaveView, xstateBv: bigint, apx: bigint[] | undefined): UapiResult<XsaveUpdate> {
  const key = `${view.restId}:${xstateBv}:${view.pkru ?? ""}:${ctx.supportedXcr0}:${ctx.profile.name}`;
  let base = roundTrips.get(key);
  if (!base) {
    const img = kvmGetXsave(ctx, kvmXsave2Size(ctx));
    if (!img.ok) return img;
    const image = img.value.image;
    image.xstateBv = xstateBv;
    base = parseXsaveUpdate(ctx, image.bytes);
    roundTrips.set(key, base);
  }
  if (!base.ok) return base;
  const geometryHasApx = uabiGeometry(ctx).hasApx;
  return ok({ ...base.value, apx: (xstateBv & XFEATURE_MASK.APX) !== 0n && geometryHasApx ? (apx ?? new Array<bigint>(16).fill(0n)) : undefined });
}
const roundTrips = new Map<string, UapiResult<XsaveUpdate>>();

function writeEgprs(ctx: VcpuIoctlCtx, values: bigint[], tag: ProvenanceTag, init = false): void {
  const v = ctx.vcpu;
  if (ctx.egprHome === "regs" && v.layout.egprsInRegs) {
    values.forEach((x, k) => v.regs.set(16 + k, x, tag));
    return;
  }
  if (init) {
    v.fpstate.egpr.fillTagged(0n, Tag.init);
    v.fpstate.xstateBv &= ~XFEATURE_MASK.APX;
    return;
  }
  values.forEach((x, k) => v.fpstate.egpr.set(k, x, tag));
  v.fpstate.xstateBv |= XFEATURE_MASK.APX;
}

export interface KvmXcr {
  xcr: number;
  value: bigint;
}
export interface KvmXcrs {
  nrXcrs: number;
  flags: number;
  xcrs: KvmXcr[];
}
/** KVM_MAX_XCRS. */
export const KVM_MAX_XCRS = 16;

/** KVM_GET_XCRS: nr_xcrs = 1, flags 0, {xcr 0, value XCR0}; no XCR (nr_xcrs 0) on a host without XSAVE. */
export function kvmGetXcrs(ctx: VcpuIoctlCtx): UapiResult<KvmXcrs> {
  if (ctx.protectedState) return fail("EINVAL", "protected guest state");
  if (!hostHasXsave(ctx.profile)) return ok({ nrXcrs: 0, flags: 0, xcrs: [] });
  return ok({ nrXcrs: 1, flags: 0, xcrs: [{ xcr: 0, value: ctx.vcpu.xcr0 }] });
}

/**
 * KVM_SET_XCRS: -EINVAL on a host without XSAVE, if nr_xcrs > 16 or flags ≠ 0; the first xcr==0
 * entry goes through __kvm_set_xcr.
 */
export function kvmSetXcrs(ctx: VcpuIoctlCtx, x: KvmXcrs): UapiResult<void> {
  if (ctx.protectedState) return fail("EINVAL", "protected guest state");
  if (!hostHasXsave(ctx.profile)) return fail("EINVAL", "the host has no XSAVE, so no XCRs");
  if (x.nrXcrs > KVM_MAX_XCRS) return fail("EINVAL", `nr_xcrs ${x.nrXcrs} > ${KVM_MAX_XCRS}`);
  if (x.flags !== 0) return fail("EINVAL", `flags ${x.flags} ≠ 0`);
  for (const e of x.xcrs.slice(0, x.nrXcrs)) {
    if (e.xcr !== 0) continue;
    const rule = kvmSetXcr(ctx.vcpu, ctx.supportedXcr0, 0, e.value);
    if (rule) return fail("EINVAL", `__kvm_set_xcr rejects 0x${e.value.toString(16)}: ${rule}`);
    break;
  }
  return ok(undefined);
}

/** struct kvm_regs, in its field order (not enum order). */
export const KVM_REGS_FIELDS = [
  "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags",
] as const;
export type KvmRegsField = (typeof KVM_REGS_FIELDS)[number];
export type KvmRegs = Record<KvmRegsField, bigint>;
const ENUM_OF: Record<Exclude<KvmRegsField, "rip" | "rflags">, number> = {
  rax: 0, rcx: 1, rdx: 2, rbx: 3, rsp: 4, rbp: 5, rsi: 6, rdi: 7,
  r8: 8, r9: 9, r10: 10, r11: 11, r12: 12, r13: 13, r14: 14, r15: 15,
};

/** KVM_GET_REGS: GPRs through the per-GPR accessors, RSP/RIP through theirs (cache_reg when unavailable). */
export function kvmGetRegs(ctx: VcpuIoctlCtx): UapiResult<KvmRegs> {
  if (ctx.protectedState) return fail("EINVAL", "protected guest state");
  const out = {} as KvmRegs;
  for (const f of KVM_REGS_FIELDS) {
    if (f === "rip") out.rip = ripRead(ctx);
    else if (f === "rflags") out.rflags = ctx.vcpu.rflags;
    else if (f === "rsp") out.rsp = rspRead(ctx);
    else out[f] = gprRead(ctx.vcpu, ENUM_OF[f]);
  }
  return ok(out);
}

/** KVM_SET_REGS: GPRs without dirty bits, RSP/RIP through their dirtying helpers, RFLAGS | 0x2. */
export function kvmSetRegs(ctx: VcpuIoctlCtx, regs: KvmRegs, tag: ProvenanceTag): UapiResult<void> {
  if (ctx.protectedState) return fail("EINVAL", "protected guest state");
  for (const f of KVM_REGS_FIELDS) {
    if (f === "rip") ripWrite(ctx, regs.rip);
    else if (f === "rflags") ctx.vcpu.rflags = regs.rflags | 0x2n;
    else if (f === "rsp") rspWrite(ctx, regs.rsp);
    else gprWrite(ctx.vcpu, ENUM_OF[f], regs[f], tag);
  }
  return ok(undefined);
}

/** KVM_SYNC_X86_* flags. */
export const KVM_SYNC_X86 = { REGS: 1, SREGS: 2, EVENTS: 4 } as const;
const KVM_SYNC_X86_VALID_FIELDS = KVM_SYNC_X86.REGS | KVM_SYNC_X86.SREGS | KVM_SYNC_X86.EVENTS;

/** sync_regs validation at KVM_RUN: bits outside REGS|SREGS|EVENTS (any bit for protected vCPUs) → -EINVAL. */
export function kvmCheckSyncRegs(validRegs: number, dirtyRegs: number, protectedState: boolean): UapiResult<void> {
  const allowed = protectedState ? 0 : KVM_SYNC_X86_VALID_FIELDS;
  if ((validRegs & ~allowed) !== 0) return fail("EINVAL", `kvm_valid_regs 0x${validRegs.toString(16)} has unsupported bits`);
  if ((dirtyRegs & ~allowed) !== 0) return fail("EINVAL", `kvm_dirty_regs 0x${dirtyRegs.toString(16)} has unsupported bits`);
  return ok(undefined);
}

export { ENUM_OF as KVM_REGS_ENUM };
