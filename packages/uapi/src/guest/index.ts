export * from "./assembler.js";
export * from "./long-mode.js";
export * from "./guest-program.js";
