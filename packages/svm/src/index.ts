export * from "./vmcb.js";
export * from "./svm-run.js";
export * from "./svm-exits.js";
export * from "./svm-backend.js";
export * from "./sev-es/vmsa.js";
export * from "./sev-es/ghcb.js";
export * from "./sev-es/sev-es-run.js";
export * from "./sev-es/sev-es-backend.js";
