export * from "./real-scenario.js";
export * from "./observe.js";
export * from "./host-quirks.js";
export * from "./compare.js";
export * from "./diff-kernels.js";
export * from "./transcript.js";
export * from "./host-model.js";
export * from "./pending-model-bugs.js";
