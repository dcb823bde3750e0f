/**
 * The SVM backend ("svm"): the model's svm_x86_ops (docs/facts.md#svm-run). KVM swaps XCR0/XSS/PKRU itself
 * (x86.c's kvm_load_xfeatures), the VMCB holds RAX/RSP/RIP, __svm_vcpu_run moves the other GPRs.
 *
 * APX: KVM removes APX (and MPX) from supported XCR0 and CPUID on SVM today ("needs VMCB support",
 * docs/facts.md#svm-apx). `apx: "hypothetical"` keeps APX so EGPR designs can be compared on SVM's sequence —
 * a what-if, not hardware: no SVM part enumerates APX support for guests.
 */
import { XFEATURE_MASK, XFEATURE_MASK_MPX, type VendorOps } from "@kvmx/core";
import { svmCacheReg, svmFastpath, svmHandleExit, svmHandleExitIrqoff, svmIntercepts } from "./svm-exits.js";
import { svmLazyMask, svmRunSites } from "./svm-run.js";
import { VMCB_FIELDS } from "./vmcb.js";

export interface SvmBackendOptions {
  /** "masked" (KVM today, default) or "hypothetical" (APX left in supported XCR0/CPUID; no such hardware). */
  readonly apx?: "masked" | "hypothetical";
}

/** kvm_caps.supported_xcr0 on SVM: MPX always removed, APX unless the hypothetical switch is on. */
export function svmSupportedXcr0(supported: bigint, apx: "masked" | "hypothetical"): bigint {
  const drop = XFEATURE_MASK_MPX | (apx === "masked" ? XFEATURE_MASK.APX : 0n);
  return supported & ~drop;
}

export function createSvmBackend(o: SvmBackendOptions = {}): VendorOps {
  const apx = o.apx ?? "masked";
  const sites = svmRunSites();
  return {
    name: apx === "masked" ? "svm" : "svm-apx",
    description:
      apx === "masked"
        ? "AMD SVM: VMCB save area (RAX/RSP/RIP), __svm_vcpu_run moves the other GPRs, NMI taken at STGI; APX masked as in KVM today"
        : "AMD SVM with APX left enabled — HYPOTHETICAL (KVM masks APX on SVM; no VMCB support exists)",
    xfeatureSwitch: "kvm",
    vendorFields: VMCB_FIELDS,
    intercepts: svmIntercepts,
    hasProtectedState: () => false,
    adjustSupportedXcr0: (s) => svmSupportedXcr0(s, apx),
    lazyAvailMask: (layout) => svmLazyMask({ layout }),
    cacheReg: svmCacheReg,
    runSites: () => sites,
    fastpath: svmFastpath,
    handleExitIrqoff: svmHandleExitIrqoff,
    handleExit: svmHandleExit,
  };
}

/** The SVM backend as KVM ships it (APX masked). */
export const svmBackend: VendorOps = createSvmBackend();
/** SVM with APX hypothetically supported, for comparing EGPR designs on SVM's sequence. */
export const svmApxBackend: VendorOps = createSvmBackend({ apx: "hypothetical" });
