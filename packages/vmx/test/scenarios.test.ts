import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { parseScenario, runScenario, ScenarioError } from "@kvmx/core";
import { vmxBackend, vmxNestedBackend } from "../src/index.js";

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

describe("vendor events in a scenario's string shorthand (vmx-nested)", () => {
  const registry = (n: string) => (n === "vmx-nested" ? vmxNestedBackend : n === "vmx" ? vmxBackend : undefined);
  const head = "name: s\nbackend: vmx-nested\ndesign: asm-conditional\nhost: { cpu: dmr, kernelApx: false }\nguest: { apx: true }\nevents:\n";
  const parse = (text: string) => parseScenario(text, "/tmp/n.yaml", { backend: registry });
  const errorOf = (text: string): string => {
    try {
      parse(text);
    } catch (e) {
      expect(e).toBeInstanceOf(ScenarioError);
      return (e as Error).message;
    }
    throw new Error("expected a ScenarioError");
  };
  const where = (text: string, token: string) => {
    const before = text.slice(0, text.indexOf(token)).split("\n");
    return `/tmp/n.yaml:${before.length}:${before[before.length - 1]!.length + 1}`;
  };

  test("`- vmx-nested:vmlaunch` parses and runs exactly like `- { kind: vmx-nested:vmlaunch }`", () => {
    const body = (launch: string, exit: string) =>
      `  - guest-xsetbv 0x800e7\n  - guest-write r16 0x1616\n  - ${launch}\n  - guest-read r16\n  - ${launch}\n  - guest-write r17 0x1717\n  - ${exit}\n  - guest-read r17\n`;
    const short = parse(head + body("vmx-nested:vmlaunch", "vmx-nested:l2-exit-reflected"));
    const long = parse(head + body("{ kind: vmx-nested:vmlaunch }", "{ kind: vmx-nested:l2-exit-reflected }"));
    expect(short.events).toEqual(long.events);
    expect(short.events[2]).toEqual({ kind: "vmx-nested:vmlaunch" });
    const a = runScenario(short);
    const b = runScenario(long);
    expect(a.ok).toBe(true);
    expect(a.violations).toEqual(b.violations);
    // the launch really happened: the steps of the vendor event are the nested entry's
    expect(a.events.map((e) => e.steps.map((t) => t.site))).toEqual(b.events.map((e) => e.steps.map((t) => t.site)));
    expect(a.events[2]!.steps.length).toBeGreaterThan(1);
  });

  test("truly unknown events, arguments to a vendor event, and vendor events on a backend without any keep file:line:column", () => {
    const typo = head + "  - guest-wrtie r16 0x1\n";
    expect(errorOf(typo)).toMatch(new RegExp(`^${where(typo, "guest-wrtie")}: unknown event "guest-wrtie"`));
    const args = head + "  - vmx-nested:vmlaunch now\n";
    expect(errorOf(args)).toMatch(new RegExp(`^${where(args, "vmx-nested:vmlaunch")}: vendor event "vmx-nested:vmlaunch" takes no arguments`));
    const plain = head.replace("backend: vmx-nested", "backend: vmx") + "  - guest-io\n  - vmx-nested:vmlaunch\n";
    expect(errorOf(plain)).toMatch(new RegExp(`^${where(plain, "vmx-nested:vmlaunch")}: backend vmx has no vendor events`));
  });
});
