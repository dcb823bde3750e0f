/**
 * KVM_CAP_SYNC_REGS register classes for kvm_run.kvm_valid_regs / kvm_dirty_regs (docs/facts.md#sync-regs):
 * any bit outside KVM_SYNC_X86_VALID_FIELDS makes KVM_RUN fail with EINVAL.
 */
export const KVM_SYNC_X86_REGS = 1n << 0n;
export const KVM_SYNC_X86_SREGS = 1n << 1n;
export const KVM_SYNC_X86_EVENTS = 1n << 2n;
export const KVM_SYNC_X86_VALID_FIELDS = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
