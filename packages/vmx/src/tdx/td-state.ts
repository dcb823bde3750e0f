/**
 * The TD's state as the TDX module keeps it (FACTS.md §5): the TDVPS holds the TD's GPRs, RIP and
 * XCR0/XSS; XFAM, fixed at TD init (ASSUMPTIONS.tdxXfamApx), bounds what the TD may enable — APX
 * inside a TD only when XFAM has bit 19. KVM never reads or writes any of it. Stored under "tdvps.*"
 * and "td.*" keys of the vendor state (GPRs with provenance).
 */
import { Tag, type ProvenanceTag, type VcpuState } from "@kvmx/core";

type Vendor = Pick<VcpuState, "vendor">;

export function tdvpsGpr(v: Vendor, r: number): { value: bigint; tag: ProvenanceTag } {
  return { value: v.vendor[`tdvps.gpr.${r}`] ?? 0n, tag: Number(v.vendor[`tdvps.gpr.${r}.tag`] ?? BigInt(Tag.init)) };
}
export function setTdvpsGpr(v: Vendor, r: number, value: bigint, tag: ProvenanceTag): void {
  v.vendor[`tdvps.gpr.${r}`] = BigInt.asUintN(64, value);
  v.vendor[`tdvps.gpr.${r}.tag`] = BigInt(tag);
}
export type TdvpsScalar = "rip" | "xcr0" | "xss";
export const tdvps = (v: Vendor, f: TdvpsScalar): bigint => v.vendor[`tdvps.${f}`] ?? 0n;
export const setTdvps = (v: Vendor, f: TdvpsScalar, value: bigint): void => {
  v.vendor[`tdvps.${f}`] = BigInt.asUintN(64, value);
};

/** XFAM (TD attribute): set once at TD init, 0 before. */
export const tdXfam = (v: Vendor): bigint => v.vendor["td.xfam"] ?? 0n;
export const tdInitialised = (v: Vendor): boolean => v.vendor["td.xfam"] !== undefined;

/** XSAVE features that are supervisor state (XSS), per FACTS.md §6 numbering: PT 8, PASID 10, CET 11/12, LBR 15. */
const SUPERVISOR_MASK = (1n << 8n) | (1n << 10n) | (1n << 11n) | (1n << 12n) | (1n << 15n);

/**
 * TDH.MNG.INIT / TDH.VP.INIT: XFAM from the TD's CPUID configuration (its leaf 0xD.0 — so APX only
 * when the TD's CPUID has it), the TDVPS from the vCPU's reset state. KVM's last look at the TD's registers.
 */
export function tdInit(v: VcpuState): void {
  v.vendor["td.xfam"] = v.cpuid.xcr0Mask;
  for (let r = 0; r < 32; r++) setTdvpsGpr(v, r, r < v.regs.length ? (v.regs[r] ?? 0n) : 0n, Tag.init);
  setTdvps(v, "rip", v.layout.pre ? (v.regs[v.layout.RIP] ?? 0n) : v.rip);
  setTdvps(v, "xcr0", v.xcr0);
  setTdvps(v, "xss", 0n);
}

/** What the module leaves loaded after a TD exit: XCR0/XSS derived from XFAM, not the host's (FACTS.md §5). */
export function xfamXcr0(xfam: bigint): bigint {
  return xfam & ~SUPERVISOR_MASK;
}
export function xfamXss(xfam: bigint): bigint {
  return xfam & SUPERVISOR_MASK;
}
