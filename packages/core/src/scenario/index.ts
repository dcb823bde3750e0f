export * from "./yaml-source.js";
export * from "./design-file.js";
export * from "./scenario-file.js";
export * from "./run-scenario.js";
export * from "./scenario-writer.js";
export * from "./expectations.js";
export * from "./host-cpu.js";
export * from "./variant-file.js";
