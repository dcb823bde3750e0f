export { HostKvm, openKvm, kvmUnavailableReason, DEFAULT_KVM_PATH } from "./kvm.js";
export { HostVm } from "./vm.js";
export { HostVcpu } from "./vcpu.js";
export { probeKvm, type KvmProbe } from "./probe.js";
