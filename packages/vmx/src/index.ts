export * from "./vmcs-fields.js";
export * from "./exit-reasons.js";
export * from "./instruction-info.js";
export * from "./vmx-cache-reg.js";
export * from "./vmx-run.js";
export * from "./vmx-exits.js";
export * from "./backend.js";
