/**
 * The VMCB as kvmx keeps it (docs/facts.md#svm-run): the save-area fields KVM and VMRUN exchange with the
 * guest (RAX, RSP, RIP, CPL; RFLAGS and the CRs are not modelled) and the control fields an exit
 * fills (EXITCODE, EXITINFO1/2, the instruction length). Vendor state fields named "vmcb.*"; the
 * GPR fields carry a provenance tag next to the value ("<field>.tag", the tag itself in the slot)
 * so a host value parked in the VMCB stays visible.
 */
import {
  VALUES, defineVendorFields, val, valLow, vid,
  type GuestExit, type ProvenanceTag, type VcpuState, type VendorField,
} from "@kvmx/core";

/** VMCB save-area fields kvmx models; RAX and RSP carry provenance. */
export const VMCB_SAVE_FIELDS = ["rax", "rsp", "rip", "cpl"] as const;
export type VmcbSaveField = (typeof VMCB_SAVE_FIELDS)[number];
export type VmcbControlField = "exit_code" | "exit_info_1" | "exit_info_2" | "insn_len";

/**
 * The VMCB fields as vendor state slots. RAX, RSP and RIP (with the tags) are written by svm_vcpu_run
 * before every VMRUN reads them and by every #VMEXIT before svm_vcpu_run copies them back, and the
 * control fields by every #VMEXIT before a handler reads them: all meaningless between events
 * ("exit-info"). CPL is read by the next VMRUN as the last #VMEXIT left it: a control.
 */
export const VMCB_FIELD = defineVendorFields({
  "vmcb.save.rax": "exit-info",
  "vmcb.save.rax.tag": "exit-info",
  "vmcb.save.rsp": "exit-info",
  "vmcb.save.rsp.tag": "exit-info",
  "vmcb.save.rip": "exit-info",
  "vmcb.save.cpl": "control",
  "vmcb.control.exit_code": "exit-info",
  "vmcb.control.exit_info_1": "exit-info",
  "vmcb.control.exit_info_2": "exit-info",
  "vmcb.control.insn_len": "exit-info",
});
const F = VMCB_FIELD;

/** Every VMCB field (VendorOps.vendorFields of svm, svm-apx and sev-es). */
export const VMCB_FIELDS: readonly VendorField[] = Object.values(VMCB_FIELD);

/** Field ids by name, and the tag field of the GPR-valued ones (-1: none). */
const SAVE: Record<VmcbSaveField, VendorField> = {
  rax: F["vmcb.save.rax"], rsp: F["vmcb.save.rsp"], rip: F["vmcb.save.rip"], cpl: F["vmcb.save.cpl"],
};
const SAVE_TAG: Record<VmcbSaveField, VendorField> = { rax: F["vmcb.save.rax.tag"], rsp: F["vmcb.save.rsp.tag"], rip: -1, cpl: -1 };
const CONTROL: Record<VmcbControlField, VendorField> = {
  exit_code: F["vmcb.control.exit_code"],
  exit_info_1: F["vmcb.control.exit_info_1"],
  exit_info_2: F["vmcb.control.exit_info_2"],
  insn_len: F["vmcb.control.insn_len"],
};

const VMCB_EXIT_CODE = CONTROL.exit_code, VMCB_EXIT_INFO_1 = CONTROL.exit_info_1;
const VMCB_EXIT_INFO_2 = CONTROL.exit_info_2, VMCB_INSN_LEN = CONTROL.insn_len;

/** SVM exit codes (AMD APM vol. 2, appendix C) for the exits the model's guests take. */
export const SVM_EXIT = {
  INTR: 0x60,
  NMI: 0x61,
  CPUID: 0x72,
  HLT: 0x78,
  IOIO: 0x7b,
  MSR: 0x7c,
  XSETBV: 0x8d,
  /** #MC intercept (SVM_EXIT_EXCP_BASE + MC_VECTOR) and DR6 accesses: exits of the corpus features (features.ts), modelled on VMX. */
  EXCP_MC: 0x52,
  READ_DR6: 0x26,
  WRITE_DR6: 0x36,
  VMGEXIT: 0x403,
  /** VMRUN failed its consistency checks (SVM_EXIT_ERR = -1). */
  ERR: 0xffff_ffff_ffff_ffffn,
} as const;
export type SvmExitName = keyof typeof SVM_EXIT;

/** Value ids of the exit codes (handlers compare ids, not bigints). */
export const SVM_EXIT_ID = Object.fromEntries(
  Object.entries(SVM_EXIT).map(([k, c]) => [k, vid(BigInt(c))]),
) as { readonly [K in SvmExitName]: number };
const EXIT_NAME_BY_ID = new Map<number, string>(Object.entries(SVM_EXIT_ID).map(([k, id]) => [id, `SVM_EXIT_${k}`]));

/** Value ids of non-negative integers (lengths, EXITINFO1 ports, CPL, PKRU), looked up by number, not bigint. */
const numberIds = new Map<number, number>();
export function numberId(n: number): number {
  let id = numberIds.get(n);
  if (id === undefined) numberIds.set(n, (id = vid(BigInt(n))));
  return id;
}

/** A VMCB save-area field (0 when never written). */
export function vmcbSave(v: VcpuState, f: VmcbSaveField): bigint {
  return v.vendorGet(SAVE[f]);
}
/** The provenance tag of a GPR-valued save-area field (Tag.init when never written). */
export function vmcbSaveTag(v: VcpuState, f: VmcbSaveField): ProvenanceTag {
  const t = SAVE_TAG[f];
  return t < 0 ? 0 : v.vendorId(t);
}
export function setVmcbSave(v: VcpuState, f: VmcbSaveField, value: bigint, tag?: ProvenanceTag): void {
  v.vendorSet(SAVE[f], value);
  if (tag !== undefined) v.vendorSetId(SAVE_TAG[f], tag);
}

export function vmcbControl(v: VcpuState, f: VmcbControlField): bigint {
  return v.vendorGet(CONTROL[f]);
}
export function setVmcbControl(v: VcpuState, f: VmcbControlField, value: bigint): void {
  v.vendorSet(CONTROL[f], value);
}

const ONE = vid(1n), TWO = vid(2n), THREE = vid(3n);

/**
 * What #VMEXIT writes into the control area for the model's exit kinds. IOIO: EXITINFO1 carries
 * the port in bits 31:16; MSR: EXITINFO1 = 1 for WRMSR; EXITINFO2 = next RIP length (decode assists).
 * AMD has no RDMSR/WRMSRNS-immediate forms (docs/facts.md#msr-imm lists them as VMX exits 84/85); the model
 * encodes them as MSR exits with EXITINFO1 = 2/3 so a handler can say "unexpected" instead of guessing.
 */
export function encodeSvmExit(v: VcpuState, exit: GuestExit): void {
  let code: number;
  let info1 = 0;
  let len = 0;
  switch (exit.kind) {
    case "xsetbv":
      code = SVM_EXIT_ID.XSETBV;
      len = exit.length;
      break;
    case "cpuid":
      code = SVM_EXIT_ID.CPUID;
      len = exit.length;
      break;
    case "hlt":
      code = SVM_EXIT_ID.HLT;
      len = exit.length;
      break;
    case "io":
      code = SVM_EXIT_ID.IOIO;
      info1 = numberId(exit.port * 0x1_0000);
      len = exit.length;
      break;
    case "wrmsr":
      code = SVM_EXIT_ID.MSR;
      info1 = ONE;
      len = exit.length;
      break;
    case "rdmsr-imm":
    case "wrmsrns-imm":
      code = SVM_EXIT_ID.MSR;
      info1 = exit.kind === "rdmsr-imm" ? TWO : THREE;
      len = exit.length;
      break;
    case "nmi":
      code = SVM_EXIT_ID.NMI;
      break;
    case "preemption-timer":
      // SVM has no VMX-preemption timer: the slice ends with a host interrupt.
      code = SVM_EXIT_ID.INTR;
      break;
    case "vm-fail":
      code = SVM_EXIT_ID.ERR;
      break;
    case "mce":
      code = SVM_EXIT_ID.EXCP_MC;
      break;
    case "dr-access":
      code = exit.write ? SVM_EXIT_ID.WRITE_DR6 : SVM_EXIT_ID.READ_DR6;
      break;
  }
  v.vendorSetId(VMCB_EXIT_CODE, code);
  v.vendorSetId(VMCB_EXIT_INFO_1, info1);
  v.vendorSetId(VMCB_EXIT_INFO_2, 0);
  v.vendorSetId(VMCB_INSN_LEN, numberId(len));
}

/** Human name of an exit code (its value id) for traces. */
export function svmExitNameOf(id: number): string {
  return EXIT_NAME_BY_ID.get(id) ?? `exit 0x${val(id).toString(16)}`;
}
/** Human name of an exit code for traces. */
export const svmExitName = (code: bigint): string => svmExitNameOf(vid(code));

/** An exit field's bits 63:16 in hex (the port of an IOIO exit's EXITINFO1), without 64-bit arithmetic when it fits 32 bits. */
export const portHex = (id: number): string =>
  VALUES.high[id] === 0 ? (valLow(id) >>> 16).toString(16) : (val(id) >> 16n).toString(16);
