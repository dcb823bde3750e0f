/**
 * The SEV-ES backend ("sev-es", docs/facts.md#sev-es): protected vCPU state, hardware-swapped XCR0/XSS/PKRU,
 * register exchange only through the GHCB. State ioctls fail with EINVAL (core's uapi-ops read
 * `hasProtectedState`). XSETBV is not intercepted (docs/facts.md#xsetbv): the guest's XCR0 reaches KVM only
 * as a GHCB field.
 */
import {
  FastpathResult, kvmEmulateCpuid, markAvailable, readEdxEax, valLow, vid,
  type ExitDisposition, type Instruction, type VcpuState, type VendorCtx, type VendorField, type VendorOps,
} from "@kvmx/core";
import { svmSupportedXcr0 } from "../svm-backend.js";
import { svmIntercepts } from "../svm-exits.js";
import { svmLazyMask } from "../svm-run.js";
import { SVM_EXIT_ID, VMCB_FIELD, VMCB_FIELDS, portHex, svmExitNameOf } from "../vmcb.js";
import { GHCB_FIELDS, ghcbGprValid, ghcbId, setGhcbId, sevEsSyncFromGhcb } from "./ghcb.js";
import { sevEsRunSites, type VmsaGprs } from "./sev-es-run.js";
import { vmsaFields } from "./vmsa.js";

const EXIT_CODE = VMCB_FIELD["vmcb.control.exit_code"];

/** XSETBV runs natively in an SEV-ES guest; everything else SVM intercepts becomes #VC → VMGEXIT (or an automatic exit). */
export function sevEsIntercepts(v: VcpuState, insn: Instruction): boolean {
  return insn.op !== "xsetbv" && svmIntercepts(v, insn);
}

/** svm_cache_reg for SEV-ES: PDPTR only; RIP, RSP, CRs are in the encrypted VMSA — a read is a WARN. */
export function sevEsCacheReg(ctx: VendorCtx, reg: number): void {
  const v = ctx.vcpu;
  markAvailable(v, reg);
  if (reg === v.layout.PDPTR) return;
  ctx.warn(`svm_cache_reg: ${v.layout.name(reg)} of an SEV-ES guest is in the encrypted VMSA`);
}

/** Only HLT (an automatic exit) reaches the fastpath; MSR writes arrive as VMGEXIT. */
export function sevEsFastpath(ctx: VendorCtx): FastpathResult {
  return ctx.vcpu.vendorId(EXIT_CODE) === SVM_EXIT_ID.HLT ? FastpathResult.EXIT_HANDLED : FastpathResult.NONE;
}

/** The GHCB response KVM leaves for the guest's #VC handler (any non-zero value: "completed"). */
const RESPONSE_PENDING = vid(1n);

/** sev_handle_vmgexit for the exits the model's guests take; automatic exits as on SVM. */
export function sevEsHandleExit(ctx: VendorCtx): ExitDisposition {
  const v = ctx.vcpu;
  const code = v.vendorId(EXIT_CODE);
  if (ctx.fastpathResult === FastpathResult.EXIT_HANDLED) return code === SVM_EXIT_ID.HLT ? "userspace" : "handled";
  if (code !== SVM_EXIT_ID.VMGEXIT) {
    if (code === SVM_EXIT_ID.HLT || code === SVM_EXIT_ID.NMI || code === SVM_EXIT_ID.INTR) return "handled";
    ctx.warn(`unhandled SEV-ES ${svmExitNameOf(code)}`);
    return "userspace";
  }
  sevEsSyncFromGhcb(ctx);
  const sw = ghcbId(v, "sw_exit_code");
  // Every VMGEXIT the model handles completes with a response the guest's #VC handler consumes.
  setGhcbId(v, "response", RESPONSE_PENDING);
  switch (sw) {
    case SVM_EXIT_ID.CPUID:
      kvmEmulateCpuid(ctx);
      return "handled";
    case SVM_EXIT_ID.IOIO:
      if (ctx.tracing) ctx.note(`KVM_EXIT_IO port 0x${portHex(ghcbId(v, "sw_exit_info_1"))}, data from GHCB RAX`);
      return "userspace";
    case SVM_EXIT_ID.MSR: {
      // WRMSR carries RAX/RCX/RDX; an MSR-immediate form (not on AMD) carries nothing KVM can use.
      if (!ghcbGprValid(v, 1)) break;
      const msr = valLow(v.regs.id(1));
      v.msrs.set(msr, readEdxEax(v));
      if (ctx.tracing) ctx.note(`MSR 0x${msr.toString(16)} ← EDX:EAX from the GHCB`);
      return "handled";
    }
  }
  ctx.warn(`VMGEXIT ${svmExitNameOf(sw)} not handled by the model `);
  return "userspace";
}

/** The vendor state of an SEV-ES vCPU whose VMSA swaps `nrGprs` GPRs: its VMCB, the GHCB, the VMSA and the host save area. */
export function sevEsVendorFields(nrGprs: VmsaGprs): VendorField[] {
  return [...VMCB_FIELDS, ...GHCB_FIELDS, ...vmsaFields(nrGprs)];
}

export interface SevEsBackendOptions {
  /** As for SVM: APX masked (KVM today) or hypothetically supported, with R16–R31 in the VMSA. */
  readonly apx?: "masked" | "hypothetical";
}

export function createSevEsBackend(o: SevEsBackendOptions = {}): VendorOps {
  const apx = o.apx ?? "masked";
  const nrGprs: VmsaGprs = apx === "masked" ? 16 : 32;
  const sites = sevEsRunSites(nrGprs);
  return {
    name: apx === "masked" ? "sev-es" : "sev-es-apx",
    description:
      apx === "masked"
        ? "AMD SEV-ES: registers in the encrypted VMSA, XCR0/XSS/PKRU swapped by VMRUN/#VMEXIT, register exchange through the GHCB"
        : "AMD SEV-ES with APX and R16–R31 in the VMSA — HYPOTHETICAL (no such VMSA layout exists)",
    xfeatureSwitch: "hardware",
    vendorFields: sevEsVendorFields(nrGprs),
    intercepts: sevEsIntercepts,
    hasProtectedState: () => true,
    adjustSupportedXcr0: (s) => svmSupportedXcr0(s, apx),
    lazyAvailMask: (layout) => svmLazyMask({ layout }),
    cacheReg: sevEsCacheReg,
    runSites: () => sites,
    fastpath: sevEsFastpath,
    handleExitIrqoff: () => undefined,
    handleExit: sevEsHandleExit,
  };
}

export const sevEsBackend: VendorOps = createSevEsBackend();
