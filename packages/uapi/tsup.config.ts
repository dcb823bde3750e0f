import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  target: "node20",
  platform: "node",
  // The declarations use Node's Disposable and Symbol.dispose: say so, for consumers whose tsconfig
  // lists its "types" (the package depends on @types/node for them).
  dts: { banner: '/// <reference types="node" />' },
  sourcemap: true,
  clean: true,
});
