/**
 * The GHCB (GHCB spec; FACTS.md §4): the one page an SEV-ES guest shares with KVM. The guest's #VC
 * handler copies the registers an exit needs into it and marks them valid; on VMGEXIT KVM zeroes
 * regs[] and fills RAX, RBX, RCX, RDX, RSI from the valid fields (sev_es_sync_from_ghcb), takes the
 * guest's XCR0 through __kvm_set_xcr, and before the next VMRUN puts RAX, RBX, RCX, RDX back
 * (sev_es_sync_to_ghcb). Stored under "ghcb.*" keys, with provenance for the GPR fields.
 */
import {
  GPR_NAMES, Tag, kvmSetXcr,
  type ProvenanceTag, type VcpuState, type VendorCtx,
} from "@kvmx/core";

/** GHCB register fields, by GPR index (RAX 0, RCX 1, RDX 2, RBX 3, RSI 6). */
export const GHCB_GPRS = [0, 3, 1, 2, 6] as const;
/** What KVM copies back before VMRUN (sev_es_sync_to_ghcb). */
export const GHCB_RETURN_GPRS = [0, 3, 1, 2] as const;

type Vendor = Pick<VcpuState, "vendor">;

export function ghcbGpr(v: Vendor, r: number): { value: bigint; tag: ProvenanceTag; valid: boolean } {
  return {
    value: v.vendor[`ghcb.gpr.${r}`] ?? 0n,
    tag: Number(v.vendor[`ghcb.gpr.${r}.tag`] ?? BigInt(Tag.init)),
    valid: (v.vendor["ghcb.valid"] ?? 0n) & (1n << BigInt(r)) ? true : false,
  };
}
export function setGhcbGpr(v: Vendor, r: number, value: bigint, tag: ProvenanceTag): void {
  v.vendor[`ghcb.gpr.${r}`] = BigInt.asUintN(64, value);
  v.vendor[`ghcb.gpr.${r}.tag`] = BigInt(tag);
  v.vendor["ghcb.valid"] = (v.vendor["ghcb.valid"] ?? 0n) | (1n << BigInt(r));
}
/** Bit 32 of the valid bitmap: the XCR0 field. */
const XCR0_VALID = 1n << 32n;
export function setGhcbXcr0(v: Vendor, xcr0: bigint): void {
  v.vendor["ghcb.xcr0"] = xcr0;
  v.vendor["ghcb.valid"] = (v.vendor["ghcb.valid"] ?? 0n) | XCR0_VALID;
}
export function ghcbXcr0(v: Vendor): bigint | undefined {
  return (v.vendor["ghcb.valid"] ?? 0n) & XCR0_VALID ? (v.vendor["ghcb.xcr0"] ?? 0n) : undefined;
}
export function clearGhcbValid(v: Vendor): void {
  v.vendor["ghcb.valid"] = 0n;
}

export type GhcbScalar = "sw_exit_code" | "sw_exit_info_1" | "insn_len" | "response";
export function ghcb(v: Vendor, f: GhcbScalar): bigint {
  return v.vendor[`ghcb.${f}`] ?? 0n;
}
export function setGhcb(v: Vendor, f: GhcbScalar, value: bigint): void {
  v.vendor[`ghcb.${f}`] = value;
}

/**
 * sev_es_sync_from_ghcb: regs[] zeroed (KVM must never see stale or host values as guest state),
 * then RAX/RBX/RCX/RDX/RSI from the fields the guest marked valid; the guest's XCR0, when valid,
 * goes through __kvm_set_xcr like any XCR0 write (an invalid one is ignored, KVM keeps its XCR0).
 */
export function sevEsSyncFromGhcb(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  v.regs.fill(0n, 0, v.layout.nrGprs);
  v.regsTag.fill(Tag.init, 0, v.layout.nrGprs);
  const filled: string[] = [];
  for (const r of GHCB_GPRS) {
    const f = ghcbGpr(v, r);
    if (!f.valid) continue;
    v.regs[r] = f.value;
    v.regsTag[r] = f.tag;
    filled.push(GPR_NAMES[r]!);
  }
  const xcr0 = ghcbXcr0(v);
  let x = "";
  if (xcr0 !== undefined) {
    const rule = kvmSetXcr(v, ctx.supportedXcr0, 0, xcr0);
    x = rule ? `; GHCB XCR0 0x${xcr0.toString(16)} rejected by __kvm_set_xcr (${rule})` : `; XCR0 ← GHCB 0x${xcr0.toString(16)} via __kvm_set_xcr`;
  }
  ctx.note(`sev_es_sync_from_ghcb: regs[] zeroed, ${filled.length ? filled.join(", ") : "nothing"} from the GHCB${x}`);
}

/** sev_es_sync_to_ghcb: RAX, RBX, RCX, RDX back into the GHCB for the guest's #VC handler. */
export function sevEsSyncToGhcb(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  clearGhcbValid(v);
  for (const r of GHCB_RETURN_GPRS) setGhcbGpr(v, r, v.regs[r] ?? 0n, v.regsTag[r] ?? Tag.init);
  ctx.note("sev_es_sync_to_ghcb: RAX, RBX, RCX, RDX → GHCB");
}
