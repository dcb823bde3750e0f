export * from "./layout.js";
export * from "./codec.js";
export * from "./flexible.js";
export * from "./kvm-xcrs.js";
export * from "./kvm-run.js";
