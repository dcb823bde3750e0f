/**
 * The SEV-ES backend ("sev-es", FACTS.md §4): protected vCPU state, hardware-swapped XCR0/XSS/PKRU,
 * register exchange only through the GHCB. State ioctls fail with EINVAL (core's uapi-ops read
 * `hasProtectedState`). XSETBV is not intercepted (FACTS.md §6): the guest's XCR0 reaches KVM only
 * as a GHCB field.
 */
import {
  FastpathResult, kvmEmulateCpuid, markAvailable, readEdxEax, gprRead,
  type ExitDisposition, type Instruction, type VcpuState, type VendorCtx, type VendorOps,
} from "@kvmx/core";
import { svmSupportedXcr0 } from "../svm-backend.js";
import { svmIntercepts } from "../svm-exits.js";
import { svmLazyMask } from "../svm-run.js";
import { SVM_EXIT, svmExitName, vmcbControl } from "../vmcb.js";
import { ghcb, ghcbGpr, setGhcb, sevEsSyncFromGhcb } from "./ghcb.js";
import { sevEsRunSites } from "./sev-es-run.js";

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
  return vmcbControl(ctx.vcpu, "exit_code") === BigInt(SVM_EXIT.HLT) ? FastpathResult.EXIT_HANDLED : FastpathResult.NONE;
}

/** sev_handle_vmgexit for the exits the model's guests take; automatic exits as on SVM. */
export function sevEsHandleExit(ctx: VendorCtx): ExitDisposition {
  const v = ctx.vcpu;
  const code = vmcbControl(v, "exit_code");
  if (ctx.fastpathResult === FastpathResult.EXIT_HANDLED) return code === BigInt(SVM_EXIT.HLT) ? "userspace" : "handled";
  if (code !== BigInt(SVM_EXIT.VMGEXIT)) {
    if (code === BigInt(SVM_EXIT.HLT) || code === BigInt(SVM_EXIT.NMI) || code === BigInt(SVM_EXIT.INTR)) return "handled";
    ctx.warn(`unhandled SEV-ES ${svmExitName(code)}`);
    return "userspace";
  }
  sevEsSyncFromGhcb(ctx);
  const sw = ghcb(v, "sw_exit_code");
  // Every VMGEXIT the model handles completes with a response the guest's #VC handler consumes.
  setGhcb(v, "response", 1n);
  switch (sw) {
    case BigInt(SVM_EXIT.CPUID):
      kvmEmulateCpuid(ctx);
      return "handled";
    case BigInt(SVM_EXIT.IOIO):
      ctx.note(`KVM_EXIT_IO port 0x${(ghcb(v, "sw_exit_info_1") >> 16n).toString(16)}, data from GHCB RAX`);
      return "userspace";
    case BigInt(SVM_EXIT.MSR): {
      // WRMSR carries RAX/RCX/RDX; an MSR-immediate form (not on AMD) carries nothing KVM can use.
      if (!ghcbGpr(v, 1).valid) break;
      const msr = Number(gprRead(v, 1) & 0xffff_ffffn);
      v.msrs.set(msr, readEdxEax(v));
      ctx.note(`MSR 0x${msr.toString(16)} ← EDX:EAX from the GHCB`);
      return "handled";
    }
  }
  ctx.warn(`VMGEXIT ${svmExitName(sw)} not handled by the model `);
  return "userspace";
}

export interface SevEsBackendOptions {
  /** As for SVM: APX masked (KVM today) or hypothetically supported, with R16–R31 in the VMSA. */
  readonly apx?: "masked" | "hypothetical";
}

export function createSevEsBackend(o: SevEsBackendOptions = {}): VendorOps {
  const apx = o.apx ?? "masked";
  const sites = sevEsRunSites(apx === "masked" ? 16 : 32);
  return {
    name: apx === "masked" ? "sev-es" : "sev-es-apx",
    description:
      apx === "masked"
        ? "AMD SEV-ES: registers in the encrypted VMSA, XCR0/XSS/PKRU swapped by VMRUN/#VMEXIT, register exchange through the GHCB"
        : "AMD SEV-ES with APX and R16–R31 in the VMSA — HYPOTHETICAL (no such VMSA layout exists)",
    xfeatureSwitch: "hardware",
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
