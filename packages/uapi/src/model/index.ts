export * from "./model-config.js";
export * from "./model-kvm.js";
export * from "./model-vm.js";
export * from "./model-vcpu.js";
export { ModelGuestMemory, GuestPhysSpace } from "./guest-memory.js";
export { MODEL_RUN_BUDGET, guestMode, type GuestStop } from "./guest-run.js";
export { resetSregs, resetDebugregs } from "./vcpu-reset.js";
export * from "./cpuid-runtime.js";
export * from "./kernel-release.js";
