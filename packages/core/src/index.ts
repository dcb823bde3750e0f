export * from "./errors.js";
export * from "./cpu/index.js";
