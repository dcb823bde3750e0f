export * from "./real-scenario.js";
export * from "./observe.js";
export * from "./host-quirks.js";
export * from "./compare.js";
export * from "./diff-kernels.js";
