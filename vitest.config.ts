import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Source-first: tests import every workspace package from its src/, so no build is needed to test.
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const alias = {
  "@kvmx/core": here("./packages/core/src/index.ts"),
  "@kvmx/vmx": here("./packages/vmx/src/index.ts"),
  "@kvmx/svm": here("./packages/svm/src/index.ts"),
  "@kvmx/uapi": here("./packages/uapi/src/index.ts"),
  "@kvmx/check": here("./packages/check/src/index.ts"),
  "@kvmx/lab": here("./packages/lab/src/index.ts"),
};

const projects = [
  ["@kvmx/core", "packages/core"],
  ["@kvmx/vmx", "packages/vmx"],
  ["@kvmx/svm", "packages/svm"],
  ["@kvmx/uapi", "packages/uapi"],
  ["@kvmx/check", "packages/check"],
  ["@kvmx/lab", "packages/lab"],
  ["kvmx", "apps/cli"],
  // The repository's own checks: every ```ts example in the package READMEs runs (test/readme-examples.test.ts).
  ["docs", "."],
] as const;

export default defineConfig({
  resolve: { alias },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Speed on 2 cores: worker threads, and one module graph per worker rather than per test file
    // (importing the sources again for each of ~70 files cost more than the tests themselves).
    // No test mocks modules or stubs globals; a file that needs a fresh process sets its own pool.
    pool: "threads",
    isolate: false,
    // The JSON report is what .ci/run counts from (KVMX_VITEST_REPORT moves it, e.g. into the lab's
    // output share); the default reporter is for people.
    reporters: ["default", ["json", { outputFile: process.env.KVMX_VITEST_REPORT ?? ".vitest/report.json" }]],
    projects: projects.map(([name, dir]) => ({
      extends: true,
      test: { name, root: here(`./${dir}`), include: ["test/**/*.test.ts"] },
    })),
  },
});
