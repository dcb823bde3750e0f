export { HostKvm, openKvm, kvmUnavailableReason, DEFAULT_KVM_PATH } from "./kvm.js";
export { HostVm } from "./vm.js";
export { HostVcpu } from "./vcpu.js";
export { probeKvm, type KvmProbe } from "./probe.js";
export { describeHost, hostKindOf, countCpuList, HOST_KINDS, LAB_QEMU_CPU_ENV, type HostKind, type HostDescription } from "./host-description.js";
