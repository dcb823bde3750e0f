/**
 * The VMX backend: the vendor-ops object (the model's vmx_x86_ops) the CLI registry and tests use.
 */
import { drAccessExits, isDirty, type Instruction, type VendorOps, type VcpuState, type VendorCtx } from "@kvmx/core";
import { vmcsWrite } from "./vmcs-fields.js";
import { vmxCacheReg, vmxLazyLoadSet } from "./vmx-cache-reg.js";
import { vmxRunSites } from "./vmx-run.js";
import { vmxFastpath, vmxHandleExit } from "./vmx-exits.js";
import { VMCS_FIELDS } from "./vmcs-fields.js";

/** Instructions a VMX guest cannot execute without a VM-exit (always-exiting, or intercepted by the model's controls / MSR bitmap). */
export function vmxIntercepts(_v: VcpuState, i: Instruction): boolean {
  switch (i.op) {
    case "xsetbv":
    case "cpuid":
    case "hlt":
    case "out-imm8-al":
    case "out-dx-al":
    case "rdmsr":
    case "wrmsr":
    case "rdmsr-imm":
    case "wrmsrns-imm":
    case "vmcall":
      return true;
    case "mov-dr6-rax":
    case "mov-rax-dr6":
      // MOV-DR exiting is on until KVM sets KVM_DEBUGREG_WONT_EXIT (docs/facts.md#dr6).
      return drAccessExits(_v);
    default:
      return false;
  }
}

export const vmxBackend: VendorOps = {
  name: "vmx",
  description: "Intel VMX (vmx.c, vmenter.S): VMCS-cached RSP/RIP/CRs, lazy set, fastpath with WRMSRNS-immediate",
  xfeatureSwitch: "kvm",
  vendorFields: VMCS_FIELDS,
  canVmFail: true,
  hasProtectedState: () => false,
  adjustSupportedXcr0: (x) => x,
  lazyAvailMask: vmxLazyLoadSet,
  intercepts: vmxIntercepts,
  cacheReg: vmxCacheReg,
  runSites: vmxRunSites,
  fastpath: vmxFastpath,
  handleExitIrqoff: (ctx) => ctx.note("vmx_handle_exit_irqoff: nothing pending"),
  handleExit: vmxHandleExit,
  loadMmuPgd: vmxLoadMmuPgd,
};

/** vmx_load_mmu_pgd with EPT: a dirty cached CR3 becomes GUEST_CR3 (feature cr3, docs/facts.md#cr3-reset). */
function vmxLoadMmuPgd(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  if (!isDirty(v, v.layout.CR3)) return;
  vmcsWrite(v, "GUEST_CR3", v.cr3);
  if (ctx.tracing) ctx.note(`GUEST_CR3 = 0x${v.cr3.toString(16)} (CR3 was dirty)`);
}
