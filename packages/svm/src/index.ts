export * from "./vmcb.js";
export * from "./svm-run.js";
export * from "./svm-exits.js";
export * from "./svm-backend.js";
