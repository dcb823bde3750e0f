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

describe("the documented details of each VMX scenario", () => {
  const sites = (f: string) => [...new Set(runScenario(load(f)).violations.map((v) => `${v.invariant}@${v.site}`))];
  test("push2pop2: #UD at both asm anchors", () => {
    expect(sites("push2pop2-ud-apx-off-guest.yaml")).toEqual(["no-host-ud@vmx:asm-before-vmenter", "no-host-ud@vmx:asm-after-vmexit"]);
  });
  test("NMI after VM-exit: the NMI handler itself is flagged in the exit asm", () => {
    const run = runScenario(load("nmi-after-vmexit-mapxf.yaml"));
    const nmi = run.violations.find((v) => v.site === "vmx:asm-store-gprs");
    expect(nmi?.invariant).toBe("apxf-c-needs-apx");
    expect(nmi?.message).toMatch(/NMI handler .* entered at vmx:asm-store-gprs with XCR0 0x1/);
  });
  test("c-xfeatures fastpath: the stale read is at x86:fastpath and the MSR gets the old value", () => {
    const run = runScenario(load("fastpath-stale-egpr-c-xfeatures.yaml"));
    expect(sites("fastpath-stale-egpr-c-xfeatures.yaml")).toEqual(["cache-coherence@x86:fastpath"]);
    const last = run.events[run.events.length - 1]!;
    expect(last.steps.find((t) => t.site === "x86:fastpath")?.description).toMatch(/MSR 0x6e0 ← r16 \(0x0\)/);
  });
  test("user design guarded by CPUID: #UD at both anchors", () => {
    expect(sites("user-design-cpuid-condition.yaml")).toEqual(["no-host-ud@vmx:asm-before-vmenter", "no-host-ud@vmx:asm-after-vmexit"]);
  });
});
