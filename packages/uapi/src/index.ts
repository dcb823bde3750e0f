export * from "./errors.js";
export * from "./errno.js";
export * from "./structs/index.js";
export * from "./ioctls.js";
export * from "./caps.js";
export * from "./exit-reasons.js";
export * from "./sync-regs.js";
export type * from "./api.js";
export * from "./host/index.js";
