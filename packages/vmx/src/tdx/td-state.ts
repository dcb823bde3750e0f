/**
 * The TD's state as the TDX module keeps it (docs/facts.md#tdx, #tdx-xfam): the TDVPS holds the TD's
 * GPRs, RIP and XCR0/XSS; XFAM, fixed at TD init (ASSUMPTIONS.tdxXfamApx), bounds what the TD may
 * enable — APX inside a TD only when XFAM has bit 19. KVM never reads or writes any of it. Kept as
 * vendor state slots "tdvps.*" and "td.*" (GPRs with their provenance tags).
 */
import {
  Tag, defineVendorFields, val, vid,
  type ProvenanceTag, type VcpuState, type VendorField, type VendorFieldKind,
} from "@kvmx/core";
import { ONE_ID } from "../value-ids.js";

const GPRS = 32;
/** Declarations of one field per GPR `from`..31, named by `name`. */
const perGpr = (name: (r: number) => string, kind: VendorFieldKind, from = 0): Record<string, VendorFieldKind> =>
  Object.fromEntries(Array.from({ length: GPRS - from }, (_, i) => [name(from + i), kind]));
const ids = (declared: Readonly<Record<string, VendorField>>, name: (r: number) => string, from = 0): readonly VendorField[] =>
  Array.from({ length: GPRS }, (_, r) => (r < from ? -1 : declared[name(r)]!));

const gprName = (r: number): string => `tdvps.gpr.${r}`;
const gprTagName = (r: number): string => `tdvps.gpr.${r}.tag`;
const declaredGprs = defineVendorFields({ ...perGpr(gprName, "value"), ...perGpr(gprTagName, "tag") });
/** TDVPS R0..R31: the TD's registers (values) and their provenance tags (raw tags, Tag.init when never written). */
export const TDVPS_GPR: readonly VendorField[] = ids(declaredGprs, gprName);
export const TDVPS_GPR_TAG: readonly VendorField[] = ids(declaredGprs, gprTagName);

/**
 * The TD's RIP, XCR0 and XSS in the TDVPS (read back at the next TD entry, possibly in a later event);
 * XFAM and whether TD init happened (TDH.MNG.INIT / TDH.VP.INIT). The RIP is a "rip" field (core's
 * vendor-fields.ts): the next TD entry loads it, but the first entry of every event starts the guest's
 * program at its code (core's runGuest) and later entries of the event follow the RIP this event's
 * exits saved, so between events it decides nothing.
 */
export const TD_FIELD = defineVendorFields({
  "tdvps.rip": "rip",
  "tdvps.xcr0": "control",
  "tdvps.xss": "control",
  "td.xfam": "control",
  "td.initialised": "control",
});

const hostName = (r: number): string => `td.host.${r}`;
const hostTagName = (r: number): string => `td.host.${r}.tag`;
/**
 * The host's R16–R31 across SEAMCALL TDH.VP.ENTER (ASSUMPTIONS.tdxModuleHostEgprs "restored"): saved at
 * every TD entry that loads the TD's EGPRs and read only by the TD exit that follows — nothing between
 * events, hence "exit-info". The tags are kept as values (ids of the tag numbers).
 */
const declaredHost = defineVendorFields({ ...perGpr(hostName, "exit-info", 16), ...perGpr(hostTagName, "exit-info", 16) });
/** Indexed by GPR number (16..31; -1 below). */
export const TD_HOST_EGPR: readonly VendorField[] = ids(declaredHost, hostName, 16);
export const TD_HOST_EGPR_TAG: readonly VendorField[] = ids(declaredHost, hostTagName, 16);

/** The TDVPS and TD fields (TDVMCALL bookkeeping is tdx-run.ts's). */
export const TD_STATE_FIELDS: readonly VendorField[] = [
  ...TDVPS_GPR, ...TDVPS_GPR_TAG, ...Object.values(TD_FIELD), ...TD_HOST_EGPR.filter((f) => f >= 0), ...TD_HOST_EGPR_TAG.filter((f) => f >= 0),
];

/** The TDVPS copy of the TD's R`r` with its provenance tag (tests and diagnostics; the sites move ids). */
export function tdvpsGpr(v: VcpuState, r: number): { value: bigint; tag: ProvenanceTag } {
  return { value: v.vendorGet(TDVPS_GPR[r]!), tag: v.vendorId(TDVPS_GPR_TAG[r]!) };
}
export function setTdvpsGprId(v: VcpuState, r: number, id: number, tag: ProvenanceTag): void {
  v.vendorSetId(TDVPS_GPR[r]!, id);
  v.vendorSetId(TDVPS_GPR_TAG[r]!, tag);
}
export type TdvpsScalar = "rip" | "xcr0" | "xss";
const SCALAR: Readonly<Record<TdvpsScalar, VendorField>> = { rip: TD_FIELD["tdvps.rip"], xcr0: TD_FIELD["tdvps.xcr0"], xss: TD_FIELD["tdvps.xss"] };
export const tdvps = (v: VcpuState, f: TdvpsScalar): bigint => v.vendorGet(SCALAR[f]);
export const setTdvps = (v: VcpuState, f: TdvpsScalar, value: bigint): void => v.vendorSet(SCALAR[f], value);

/** XFAM (TD attribute): set once at TD init, 0 before. */
export const tdXfam = (v: VcpuState): bigint => v.vendorGet(TD_FIELD["td.xfam"]);
export const tdXfamId = (v: VcpuState): number => v.vendorId(TD_FIELD["td.xfam"]);
export const tdInitialised = (v: VcpuState): boolean => v.vendorId(TD_FIELD["td.initialised"]) === ONE_ID;

/** XSAVE features that are supervisor state (XSS), per docs/facts.md#xfeatures numbering: PT 8, PASID 10, CET 11/12, LBR 15. */
const SUPERVISOR_MASK = (1n << 8n) | (1n << 10n) | (1n << 11n) | (1n << 12n) | (1n << 15n);

/**
 * TDH.MNG.INIT / TDH.VP.INIT: XFAM from the TD's CPUID configuration (its leaf 0xD.0 — so APX only
 * when the TD's CPUID has it), the TDVPS from the vCPU's reset state. KVM's last look at the TD's registers.
 */
export function tdInit(v: VcpuState): void {
  v.vendorSet(TD_FIELD["td.xfam"], v.cpuid.xcr0Mask);
  v.vendorSetId(TD_FIELD["td.initialised"], ONE_ID);
  const regs = v.regs;
  for (let r = 0; r < GPRS; r++) setTdvpsGprId(v, r, r < regs.length ? regs.id(r) : 0, Tag.init);
  v.vendorSetId(SCALAR.rip, v.layout.pre ? regs.id(v.layout.RIP) : v.ripId);
  v.vendorSetId(SCALAR.xcr0, v.xcr0Id);
  v.vendorSetId(SCALAR.xss, 0);
}

/** What the module leaves loaded after a TD exit: XCR0/XSS derived from XFAM, not the host's (docs/facts.md#tdx-exits). */
export function xfamXcr0(xfam: bigint): bigint {
  return xfam & ~SUPERVISOR_MASK;
}
export function xfamXss(xfam: bigint): bigint {
  return xfam & SUPERVISOR_MASK;
}

/** XCR0 and XSS (value ids) after a TD exit for an XFAM (by XFAM's value id), computed once per XFAM. */
const afterExit: { xcr0: number; xss: number }[] = [];
export function xfamAfterExit(xfamId: number): { readonly xcr0: number; readonly xss: number } {
  let x = afterExit[xfamId];
  if (!x) {
    const xfam = val(xfamId);
    afterExit[xfamId] = x = { xcr0: vid(xfamXcr0(xfam)), xss: vid(xfamXss(xfam)) };
  }
  return x;
}
