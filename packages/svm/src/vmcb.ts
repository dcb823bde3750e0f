/**
 * The VMCB as kvmx keeps it (FACTS.md §4): the save-area fields KVM and VMRUN exchange with the
 * guest (RAX, RSP, RIP, RFLAGS, CR0/2/3/4, CPL) and the control fields an exit fills (EXITCODE,
 * EXITINFO1/2). Stored in the vCPU's vendor state under "vmcb.*" keys; GPR-valued fields carry a
 * provenance tag next to the value ("<field>.tag") so a host value parked in the VMCB stays visible.
 */
import { Tag, type GuestExit, type ProvenanceTag, type VcpuState } from "@kvmx/core";

/** VMCB save-area fields kvmx models; the GPR-like ones carry provenance. */
export const VMCB_SAVE_FIELDS = ["rax", "rsp", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cpl"] as const;
export type VmcbSaveField = (typeof VMCB_SAVE_FIELDS)[number];

/** SVM exit codes (AMD APM vol. 2, appendix C) for the exits the model's guests take. */
export const SVM_EXIT = {
  INTR: 0x60,
  NMI: 0x61,
  CPUID: 0x72,
  HLT: 0x78,
  IOIO: 0x7b,
  MSR: 0x7c,
  XSETBV: 0x8d,
  VMGEXIT: 0x403,
  /** VMRUN failed its consistency checks (SVM_EXIT_ERR = -1). */
  ERR: 0xffff_ffff_ffff_ffffn,
} as const;

export type VmcbState = Pick<VcpuState, "vendor">;

const key = (area: "save" | "control", f: string): string => `vmcb.${area}.${f}`;

export function vmcbSave(v: VmcbState, f: VmcbSaveField): bigint {
  return v.vendor[key("save", f)] ?? 0n;
}
export function vmcbSaveTag(v: VmcbState, f: VmcbSaveField): ProvenanceTag {
  return Number(v.vendor[`${key("save", f)}.tag`] ?? BigInt(Tag.init));
}
export function setVmcbSave(v: VmcbState, f: VmcbSaveField, value: bigint, tag?: ProvenanceTag): void {
  v.vendor[key("save", f)] = BigInt.asUintN(64, value);
  if (tag !== undefined) v.vendor[`${key("save", f)}.tag`] = BigInt(tag);
}

export type VmcbControlField = "exit_code" | "exit_info_1" | "exit_info_2" | "insn_len";
export function vmcbControl(v: VmcbState, f: VmcbControlField): bigint {
  return v.vendor[key("control", f)] ?? 0n;
}
export function setVmcbControl(v: VmcbState, f: VmcbControlField, value: bigint): void {
  v.vendor[key("control", f)] = BigInt.asUintN(64, value);
}

/**
 * What #VMEXIT writes into the control area for the model's exit kinds. IOIO: EXITINFO1 carries
 * the port in bits 31:16; MSR: EXITINFO1 = 1 for WRMSR; EXITINFO2 = next RIP length (decode assists).
 * AMD has no RDMSR/WRMSRNS-immediate forms (FACTS.md §1 lists them as VMX exits 84/85); the model
 * encodes them as MSR exits with EXITINFO1 = 2/3 so a handler can say "unexpected" instead of guessing.
 */
export function encodeSvmExit(v: VmcbState, exit: GuestExit): void {
  let code: bigint;
  let info1 = 0n;
  let len = 0;
  switch (exit.kind) {
    case "xsetbv":
      code = BigInt(SVM_EXIT.XSETBV);
      len = exit.length;
      break;
    case "cpuid":
      code = BigInt(SVM_EXIT.CPUID);
      len = exit.length;
      break;
    case "hlt":
      code = BigInt(SVM_EXIT.HLT);
      len = exit.length;
      break;
    case "io":
      code = BigInt(SVM_EXIT.IOIO);
      info1 = BigInt(exit.port) << 16n;
      len = exit.length;
      break;
    case "wrmsr":
      code = BigInt(SVM_EXIT.MSR);
      info1 = 1n;
      len = exit.length;
      break;
    case "rdmsr-imm":
    case "wrmsrns-imm":
      code = BigInt(SVM_EXIT.MSR);
      info1 = exit.kind === "rdmsr-imm" ? 2n : 3n;
      len = exit.length;
      break;
    case "nmi":
      code = BigInt(SVM_EXIT.NMI);
      break;
    case "preemption-timer":
      // SVM has no VMX-preemption timer: the slice ends with a host interrupt.
      code = BigInt(SVM_EXIT.INTR);
      break;
    case "vm-fail":
      code = SVM_EXIT.ERR;
      break;
  }
  setVmcbControl(v, "exit_code", code);
  setVmcbControl(v, "exit_info_1", info1);
  setVmcbControl(v, "exit_info_2", 0n);
  setVmcbControl(v, "insn_len", BigInt(len));
}

/** Human name of an exit code for traces. */
export function svmExitName(code: bigint): string {
  if (code === SVM_EXIT.ERR) return "SVM_EXIT_ERR";
  for (const [k, c] of Object.entries(SVM_EXIT)) if (typeof c === "number" && BigInt(c) === code) return `SVM_EXIT_${k}`;
  return `exit 0x${code.toString(16)}`;
}
