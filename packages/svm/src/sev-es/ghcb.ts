/**
 * The GHCB (GHCB spec; docs/facts.md#sev-es): the one page an SEV-ES guest shares with KVM. The guest's #VC
 * handler copies the registers an exit needs into it and marks them valid; on VMGEXIT KVM zeroes
 * regs[] and fills RAX, RBX, RCX, RDX, RSI from the valid fields (sev_es_sync_from_ghcb), takes the
 * guest's XCR0 through __kvm_set_xcr, and before the next VMRUN puts RAX, RBX, RCX, RDX back
 * (sev_es_sync_to_ghcb). Vendor state fields named "ghcb.*", with provenance for the GPR fields.
 */
import {
  GPR_NAMES, Tag, VALUES, defineVendorFields, kvmSetXcr, val, valLow, vid,
  type PhysicalCpu, type ProvenanceTag, type VcpuState, type VendorCtx, type VendorField,
} from "@kvmx/core";
import { defineGprFields } from "../gpr-fields.js";

/** GHCB register fields, by GPR index (RAX 0, RCX 1, RDX 2, RBX 3, RSI 6). */
export const GHCB_GPRS = [0, 3, 1, 2, 6] as const;
/** What KVM copies back before VMRUN (sev_es_sync_to_ghcb). */
export const GHCB_RETURN_GPRS = [0, 3, 1, 2] as const;

/**
 * The GHCB as vendor state slots. The register fields are copies of guest registers ("value", with
 * their tags); the valid bitmap, XCR0, exit code/information, instruction length and the pending
 * response are controls — the guest's #VC handler reads the response, exit code and length of the
 * last VMGEXIT when it resumes in the next KVM_RUN.
 */
export const GHCB_FIELD = defineVendorFields({
  "ghcb.valid": "control",
  "ghcb.xcr0": "control",
  "ghcb.sw_exit_code": "control",
  "ghcb.sw_exit_info_1": "control",
  "ghcb.insn_len": "control",
  "ghcb.response": "control",
});
const GHCB_GPR = defineGprFields("ghcb.gpr", GHCB_GPRS);
const VALID = GHCB_FIELD["ghcb.valid"];
const XCR0 = GHCB_FIELD["ghcb.xcr0"];
const GPR = GHCB_GPR.value;
const GPR_TAG = GHCB_GPR.tag;

/** Every GHCB field (VendorOps.vendorFields of sev-es). */
export const GHCB_FIELDS: readonly VendorField[] = [...Object.values(GHCB_FIELD), ...GHCB_GPR.all];

/** Bit 32 of the valid bitmap: the XCR0 field. */
const XCR0_VALID_BIT = 32;

/** Whether bit `bit` is set in the valid bitmap whose value id is `id`. */
const hasBit = (id: number, bit: number): boolean =>
  bit < 32 ? ((valLow(id) >>> bit) & 1) !== 0 : ((VALUES.high[id]! >>> (bit - 32)) & 1) !== 0;
/** The id of the bitmap `id` with `bit` set, memoised (the bitmap takes a handful of values). */
const withBitMemo = new Map<number, number>();
function withBit(id: number, bit: number): number {
  const k = id * 64 + bit;
  let out = withBitMemo.get(k);
  if (out === undefined) withBitMemo.set(k, (out = hasBit(id, bit) ? id : vid(val(id) | (1n << BigInt(bit)))));
  return out;
}

/** The GHCB's register field for GPR `r`. */
export function ghcbGpr(v: VcpuState, r: number): { value: bigint; tag: ProvenanceTag; valid: boolean } {
  return { value: v.vendorGet(GPR[r]!), tag: v.vendorId(GPR_TAG[r]!), valid: ghcbGprValid(v, r) };
}
export const ghcbGprValid = (v: VcpuState, r: number): boolean => hasBit(v.vendorId(VALID), r);
/** Stores GPR `r` (value id and tag) into its GHCB field and marks it valid. */
export function setGhcbGprId(v: VcpuState, r: number, id: number, tag: ProvenanceTag): void {
  v.vendorSetId(GPR[r]!, id);
  v.vendorSetId(GPR_TAG[r]!, tag);
  v.vendorSetId(VALID, withBit(v.vendorId(VALID), r));
}
export const setGhcbGpr = (v: VcpuState, r: number, value: bigint, tag: ProvenanceTag): void => setGhcbGprId(v, r, vid(value), tag);
/** Copies GHCB field `r` into the physical CPU's GPR `r` (the guest's #VC handler taking a result). */
export function ghcbGprToCpu(v: VcpuState, r: number, cpu: PhysicalCpu): void {
  cpu.setGprId(r, v.vendorId(GPR[r]!), v.vendorId(GPR_TAG[r]!));
}

/** Stores an XCR0 (value id) into the GHCB and marks it valid. */
export function setGhcbXcr0Id(v: VcpuState, xcr0: number): void {
  v.vendorSetId(XCR0, xcr0);
  v.vendorSetId(VALID, withBit(v.vendorId(VALID), XCR0_VALID_BIT));
}
export const setGhcbXcr0 = (v: VcpuState, xcr0: bigint): void => setGhcbXcr0Id(v, vid(xcr0));
export function ghcbXcr0(v: VcpuState): bigint | undefined {
  return hasBit(v.vendorId(VALID), XCR0_VALID_BIT) ? v.vendorGet(XCR0) : undefined;
}
export function clearGhcbValid(v: VcpuState): void {
  v.vendorSetId(VALID, 0);
}

export type GhcbScalar = "sw_exit_code" | "sw_exit_info_1" | "insn_len" | "response";
const SCALAR: Record<GhcbScalar, VendorField> = {
  sw_exit_code: GHCB_FIELD["ghcb.sw_exit_code"],
  sw_exit_info_1: GHCB_FIELD["ghcb.sw_exit_info_1"],
  insn_len: GHCB_FIELD["ghcb.insn_len"],
  response: GHCB_FIELD["ghcb.response"],
};
export function ghcb(v: VcpuState, f: GhcbScalar): bigint {
  return v.vendorGet(SCALAR[f]);
}
export function ghcbId(v: VcpuState, f: GhcbScalar): number {
  return v.vendorId(SCALAR[f]);
}
export function setGhcb(v: VcpuState, f: GhcbScalar, value: bigint): void {
  v.vendorSet(SCALAR[f], value);
}
export function setGhcbId(v: VcpuState, f: GhcbScalar, id: number): void {
  v.vendorSetId(SCALAR[f], id);
}

/**
 * sev_es_sync_from_ghcb: regs[] zeroed (KVM must never see stale or host values as guest state),
 * then RAX/RBX/RCX/RDX/RSI from the fields the guest marked valid; the guest's XCR0, when valid,
 * goes through __kvm_set_xcr like any XCR0 write (an invalid one is ignored, KVM keeps its XCR0).
 */
export function sevEsSyncFromGhcb(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const regs = v.regs;
  regs.fillTagged(0n, Tag.init, 0, v.layout.nrGprs);
  const valid = v.vendorId(VALID);
  let filled = "";
  for (const r of GHCB_GPRS) {
    if (!hasBit(valid, r)) continue;
    regs.setId(r, v.vendorId(GPR[r]!), v.vendorId(GPR_TAG[r]!));
    if (ctx.tracing) filled += `${filled ? ", " : ""}${GPR_NAMES[r]!}`;
  }
  let x = "";
  if (hasBit(valid, XCR0_VALID_BIT)) {
    const xcr0 = v.vendorGet(XCR0);
    const rule = kvmSetXcr(v, ctx.supportedXcr0, 0, xcr0);
    if (ctx.tracing) x = rule ? `; GHCB XCR0 0x${xcr0.toString(16)} rejected by __kvm_set_xcr (${rule})` : `; XCR0 ← GHCB 0x${xcr0.toString(16)} via __kvm_set_xcr`;
  }
  if (ctx.tracing) ctx.note(`sev_es_sync_from_ghcb: regs[] zeroed, ${filled || "nothing"} from the GHCB${x}`);
}

/** sev_es_sync_to_ghcb: RAX, RBX, RCX, RDX back into the GHCB for the guest's #VC handler. */
export function sevEsSyncToGhcb(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const regs = v.regs;
  clearGhcbValid(v);
  for (const r of GHCB_RETURN_GPRS) setGhcbGprId(v, r, regs.id(r), regs.tag(r));
  ctx.note("sev_es_sync_to_ghcb: RAX, RBX, RCX, RDX → GHCB");
}
