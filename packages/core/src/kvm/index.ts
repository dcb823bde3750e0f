export * from "./explorable.js";
