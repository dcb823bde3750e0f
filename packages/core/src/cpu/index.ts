export * from "./xfeatures.js";
export * from "./gpr.js";
export * from "./provenance.js";
export * from "./physical-cpu.js";
