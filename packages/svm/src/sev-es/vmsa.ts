/**
 * The SEV-ES VMSA (docs/facts.md#sev-es): the guest's whole register state — all GPRs, RIP, XCR0, XSS, PKRU —
 * in encrypted memory that only VMRUN/#VMEXIT read and write. KVM writes it once, before the guest
 * is launched (LAUNCH_UPDATE_VMSA, sev_es_sync_vmsa); afterwards only hardware touches it. Vendor
 * state fields named "vmsa.*" (GPRs with their provenance tags, "vmsa.gpr.<n>.tag") and, for the
 * host save area VMRUN fills and #VMEXIT restores from, "hsa.*".
 */
import {
  Tag, defineVendorFields, vid,
  type ProvenanceTag, type VcpuState, type VendorField,
} from "@kvmx/core";
import { defineGprFields, gprRange } from "../gpr-fields.js";
import { numberId } from "../vmcb.js";

/** VMSA GPR fields by register (R0–R31; R16–R31 only in the hypothetical APX layout). */
export const VMSA_GPR = defineGprFields("vmsa.gpr", gprRange(0, 32));
/**
 * Host R16–R31 VMRUN saves in the host save area (hypothetical APX layout only): the legacy host
 * GPRs are the entry asm's business, not vendor state.
 */
export const HSA_GPR = defineGprFields("hsa.gpr", gprRange(16, 32));

/**
 * The VMSA's other fields and the host save area's XCR0/XSS/PKRU. Controls: VMRUN reads the VMSA
 * as the last #VMEXIT left it, and "launched" says whether KVM may still write it. The RIP is a "rip"
 * field (core's vendor-fields.ts): every event's first guest entry starts the guest's program at its
 * code, so the RIP the last #VMEXIT saved decides nothing across events.
 */
export const VMSA_FIELD = defineVendorFields({
  "vmsa.rip": "rip",
  "vmsa.xcr0": "control",
  "vmsa.xss": "control",
  "vmsa.pkru": "control",
  "vmsa.launched": "control",
  "hsa.xcr0": "control",
  "hsa.xss": "control",
  "hsa.pkru": "control",
});

/** The VMSA and host-save-area fields of a backend whose VMSA swaps `nrGprs` GPRs. */
export function vmsaFields(nrGprs: number): VendorField[] {
  const out: VendorField[] = [...Object.values(VMSA_FIELD)];
  for (let r = 0; r < nrGprs; r++) out.push(VMSA_GPR.value[r]!, VMSA_GPR.tag[r]!);
  for (let r = 16; r < nrGprs; r++) out.push(HSA_GPR.value[r]!, HSA_GPR.tag[r]!);
  return out;
}

export function vmsaGpr(v: VcpuState, r: number): { value: bigint; tag: ProvenanceTag } {
  return { value: v.vendorGet(VMSA_GPR.value[r]!), tag: v.vendorId(VMSA_GPR.tag[r]!) };
}
export function setVmsaGpr(v: VcpuState, r: number, value: bigint, tag: ProvenanceTag): void {
  v.vendorSet(VMSA_GPR.value[r]!, value);
  v.vendorSetId(VMSA_GPR.tag[r]!, tag);
}

export type VmsaScalar = "rip" | "xcr0" | "xss" | "pkru" | "launched";
const VMSA_SCALAR: Record<VmsaScalar, VendorField> = {
  rip: VMSA_FIELD["vmsa.rip"], xcr0: VMSA_FIELD["vmsa.xcr0"], xss: VMSA_FIELD["vmsa.xss"],
  pkru: VMSA_FIELD["vmsa.pkru"], launched: VMSA_FIELD["vmsa.launched"],
};
export function vmsa(v: VcpuState, f: VmsaScalar): bigint {
  return v.vendorGet(VMSA_SCALAR[f]);
}
export function setVmsa(v: VcpuState, f: VmsaScalar, value: bigint): void {
  v.vendorSet(VMSA_SCALAR[f], value);
}

/** The host save area KVM fills before VMRUN; #VMEXIT restores XCR0/XSS/PKRU from it. */
export type HostSaveField = "xcr0" | "xss" | "pkru";
const HOST_SAVE: Record<HostSaveField, VendorField> = { xcr0: VMSA_FIELD["hsa.xcr0"], xss: VMSA_FIELD["hsa.xss"], pkru: VMSA_FIELD["hsa.pkru"] };
export function hostSave(v: VcpuState, f: HostSaveField): bigint {
  return v.vendorGet(HOST_SAVE[f]);
}
export function setHostSave(v: VcpuState, f: HostSaveField, value: bigint): void {
  v.vendorSet(HOST_SAVE[f], value);
}

const ONE = vid(1n);

/**
 * sev_es_sync_vmsa at LAUNCH_UPDATE_VMSA: the last time KVM may write the guest's registers. After
 * this the VMSA is encrypted and the guest is "launched". A register regs[] has no slot for reads
 * as 0 with Tag.init.
 */
export function sevEsSyncVmsa(v: VcpuState, nrGprs: number): void {
  const regs = v.regs;
  for (let r = 0; r < nrGprs; r++) {
    const has = r < regs.length;
    v.vendorSetId(VMSA_GPR.value[r]!, has ? regs.id(r) : 0);
    v.vendorSetId(VMSA_GPR.tag[r]!, has ? regs.tag(r) : Tag.init);
  }
  v.vendorSetId(VMSA_SCALAR.rip, v.layout.pre ? regs.id(v.layout.RIP) : vid(v.rip));
  v.vendorSetId(VMSA_SCALAR.xcr0, v.xcr0Id);
  v.vendorSet(VMSA_SCALAR.xss, v.xss);
  v.vendorSetId(VMSA_SCALAR.pkru, numberId(v.pkru));
  v.vendorSetId(VMSA_SCALAR.launched, ONE);
}

/** The VMSA's "launched" flag. */
export const vmsaLaunched = (v: VcpuState): boolean => v.vendorId(VMSA_SCALAR.launched) !== 0;
