/**
 * The SEV-ES VMSA (FACTS.md §4): the guest's whole register state — all GPRs, RIP, XCR0, XSS, PKRU —
 * in encrypted memory that only VMRUN/#VMEXIT read and write. KVM writes it once, before the guest
 * is launched (LAUNCH_UPDATE_VMSA, sev_es_sync_vmsa); afterwards only hardware touches it. Stored
 * in the vCPU's vendor state under "vmsa.*" keys (GPRs with provenance).
 */
import { Tag, type ProvenanceTag, type VcpuState } from "@kvmx/core";

type Vendor = Pick<VcpuState, "vendor">;

export function vmsaGpr(v: Vendor, r: number): { value: bigint; tag: ProvenanceTag } {
  return { value: v.vendor[`vmsa.gpr.${r}`] ?? 0n, tag: Number(v.vendor[`vmsa.gpr.${r}.tag`] ?? BigInt(Tag.init)) };
}
export function setVmsaGpr(v: Vendor, r: number, value: bigint, tag: ProvenanceTag): void {
  v.vendor[`vmsa.gpr.${r}`] = BigInt.asUintN(64, value);
  v.vendor[`vmsa.gpr.${r}.tag`] = BigInt(tag);
}

export type VmsaScalar = "rip" | "xcr0" | "xss" | "pkru" | "launched";
export function vmsa(v: Vendor, f: VmsaScalar): bigint {
  return v.vendor[`vmsa.${f}`] ?? 0n;
}
export function setVmsa(v: Vendor, f: VmsaScalar, value: bigint): void {
  v.vendor[`vmsa.${f}`] = BigInt.asUintN(64, value);
}

/** The host save area KVM fills before VMRUN; #VMEXIT restores XCR0/XSS/PKRU from it. */
export type HostSaveField = "xcr0" | "xss" | "pkru";
export function hostSave(v: Vendor, f: HostSaveField): bigint {
  return v.vendor[`hsa.${f}`] ?? 0n;
}
export function setHostSave(v: Vendor, f: HostSaveField, value: bigint): void {
  v.vendor[`hsa.${f}`] = value;
}

/**
 * sev_es_sync_vmsa at LAUNCH_UPDATE_VMSA: the last time KVM may write the guest's registers. After
 * this the VMSA is encrypted and the guest is "launched".
 */
export function sevEsSyncVmsa(v: VcpuState, nrGprs: number): void {
  for (let r = 0; r < nrGprs; r++) setVmsaGpr(v, r, v.regs[r] ?? 0n, v.regsTag[r] ?? Tag.init);
  setVmsa(v, "rip", v.layout.pre ? (v.regs[v.layout.RIP] ?? 0n) : v.rip);
  setVmsa(v, "xcr0", v.xcr0);
  setVmsa(v, "xss", v.xss);
  setVmsa(v, "pkru", BigInt(v.pkru));
  setVmsa(v, "launched", 1n);
}
