export * from "./yaml-source.js";
export * from "./design-file.js";
export * from "./scenario-file.js";
export * from "./run-scenario.js";
export * from "./scenario-writer.js";
