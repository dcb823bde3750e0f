/**
 * Model features: parts of KVM the APX checks do not need and the default model leaves out, switched
 * on per machine by its variant (variants.ts). A feature adds state that stays constant otherwise, the
 * sites it needs to the run plan and the events it makes meaningful; with no feature on, the model is
 * exactly the one `kvmx check` explores (docs/model.md#features).
 */
import { InputError } from "../errors.js";

/** Every feature, with what switching it on models. */
export const FEATURES = {
  pkru: "PKRU with CR4.PKE and XCR0.PKRU: the guest's PKRU loaded and the host's restored around the guest (kvm_load_guest_pkru, kvm_load_host_pkru); PKRU in XSAVE/XRSTOR, RDPKRU/WRPKRU",
  xfd: "IA32_XFD and IA32_XFD_ERR with AMX tile data: the guest fpstate holds the tile components, XFD switches with the fpstate, the guest writes IA32_XFD (fpu_update_guest_xfd)",
  xstate: "the guest fpstate's XSTATE_BV follows KVM_SET_XSAVE for every component, not only component 19",
  dr6: "guest DR6: MOV DR exits until KVM stops intercepting (KVM_DEBUGREG_WONT_EXIT); KVM loads DR6 before the run loop and saves it after",
  cr3: "guest CR3: loaded by VM-entry from the VMCS, changed by the guest without a VM-exit (EPT), cached lazily by KVM, written back when dirty (load_mmu_pgd)",
  "host-irq": "host interrupts at IRQ-open sites (irq events) whose handler uses kernel_fpu_begin; TIF_NEED_FPU_LOAD and switch_fpu_return; the preempt/IRQ markers of vcpu_enter_guest",
  "sched-out": "the vCPU thread scheduled out at a preemptible site (sched-out events): vcpu_put, switch_to to another task and back, vcpu_load",
  "machine-check": "a machine check in the guest (guest-mce): the host #MC handler (kvm_machine_check) runs and schedules",
  "vcpu-create": "KVM_CREATE_VCPU of a second vCPU (create-vcpu): kvm_arch_vcpu_create and the RESET it ends with, the vendor state unwritten until then",
} as const;
export type Feature = keyof typeof FEATURES;
export const FEATURE_NAMES = Object.keys(FEATURES) as Feature[];

/** One bit per feature (ResolvedConfig.features): a machine tests a feature with one AND. */
export const FEATURE_BIT: { readonly [F in Feature]: number } = Object.fromEntries(FEATURE_NAMES.map((f, i) => [f, 1 << i])) as {
  readonly [F in Feature]: number;
};

/** The bit set of `features`, checked. */
export function featureBits(features: readonly string[]): number {
  let bits = 0;
  for (const f of features) {
    const b = (FEATURE_BIT as Record<string, number>)[f];
    if (b === undefined) throw new InputError(`unknown feature "${f}" (known: ${FEATURE_NAMES.join(", ")})`);
    bits |= b;
  }
  return bits;
}

export const hasFeature = (bits: number, f: Feature): boolean => (bits & FEATURE_BIT[f]) !== 0;

/** Feature names of a bit set, in table order. */
export const featureNames = (bits: number): Feature[] => FEATURE_NAMES.filter((f) => (bits & FEATURE_BIT[f]) !== 0);
