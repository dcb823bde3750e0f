export * from "./errors.js";
export * from "./model-options.js";
export * from "./cpu/index.js";
export * from "./kvm/index.js";
export * from "./scenario/index.js";
