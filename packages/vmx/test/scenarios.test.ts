import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { parseScenario, runScenario } from "@kvmx/core";
import { vmxBackend } from "../src/index.js";

const dir = fileURLToPath(new URL("../../../scenarios/", import.meta.url));
const backend = (n: string) => (n === "vmx" ? vmxBackend : undefined);
const load = (f: string) => parseScenario(readFileSync(join(dir, f), "utf8"), join(dir, f), { backend });

describe("example scenarios produce their documented outcome (run on the model)", () => {
  // The VMX scenarios; scenarios for other backends run in the CLI's tests, which have every backend.
  const vmxFiles = readdirSync(dir).filter((x) => x.endsWith(".yaml") && /^backend:\s*vmx\s*$/m.test(readFileSync(join(dir, x), "utf8")));
  test("there are VMX example scenarios", () => expect(vmxFiles.length).toBeGreaterThanOrEqual(6));
  for (const f of vmxFiles) {
    test(f, () => {
      const run = runScenario(load(f));
      expect(run.expectationFailures).toEqual([]);
      expect(run.ok).toBe(true);
    });
  }
});
