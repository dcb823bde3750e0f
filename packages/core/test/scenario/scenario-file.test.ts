import { fc, test as ftest } from "@fast-check/vitest";
import { describe, expect, test } from "vitest";
import { parseScenario, type Scenario } from "../../src/scenario/scenario-file.js";
import { scenarioToYaml } from "../../src/scenario/scenario-writer.js";
import type { VendorOps } from "../../src/kvm/vendor-ops.js";
import type { KvmxEvent } from "../../src/kvm/events.js";
import { at, scenarioErrorOf } from "./text-position.js";

// Parsing needs a registry that answers by name and a backend that can list its sites (NMI events
// are validated against them); running is tested with real backends in @kvmx/vmx.
const fake = {
  name: "fake",
  adjustSupportedXcr0: (x: bigint) => x,
  hasProtectedState: () => false,
  runSites: () => [
    { id: "guest", kind: "guest", nmiOpen: true, description: "guest" },
    { id: "vmx:handle-nmi", kind: "c", nmiOpen: true, description: "nmi" },
  ],
} as unknown as VendorOps;
const opts = { backend: (n: string) => (n === "fake" ? fake : undefined), readFile: () => "name: file-design\ndescription: d\nsource: s\negprHome: fpstate\n" };

const BASE = "name: s\nbackend: fake\ndesign: asm-conditional\nhost: { cpu: dmr, kernelApx: false }\nguest: { apx: true }\n";

const errorOf = (text: string): string => scenarioErrorOf(() => parseScenario(text, "/tmp/s.yaml", opts));

describe("scenario files", () => {
  test("terse and full event forms parse to the same KvmxEvent", () => {
    const s = parseScenario(BASE + "events:\n  - guest-write r16 0x11\n  - { kind: guest-write, reg: r16, value: '0x11' }\n  - nmi vmx:handle-nmi\n  - migrate fpstate\n", "/tmp/s.yaml", opts);
    expect(s.events[0]).toEqual(s.events[1]);
    expect(s.events[2]).toEqual({ kind: "nmi", site: "vmx:handle-nmi" });
    expect(s.events[3]).toEqual({ kind: "migrate", design: "fpstate" });
    const bad = BASE + "events:\n  - guest-io\n  - nmi nowhere\n";
    expect(errorOf(bad).startsWith(`${at("/tmp/s.yaml", bad, "nmi nowhere")}: "nowhere" is not an NMI-open site of fake`)).toBe(true);
    expect(s.design.name).toBe("asm-conditional");
  });

  test("errors point at the offending event, field or key", () => {
    const cases: [string, string, string][] = [
      [BASE + "events:\n  - guest-wirte r16 1\n", "guest-wirte", 'unknown event "guest-wirte"'],
      [BASE + "events:\n  - { kind: guest-write, reg: r32, value: '0x1' }\n", "r32", '"r32" is not a GPR name'],
      [BASE + "events:\n  - { kind: guest-write, reg: r16, value: zz }\n", "zz", "guest-write value"],
      [BASE + "events: []\nexpect: { violations: [no-leek] }\n", "no-leek", 'unknown invariant "no-leek"'],
      [BASE + "events: []\noptions: { xcr0ApxDisable: forget }\n", "forget", "option xcr0ApxDisable"],
      [BASE.replace("backend: fake", "backend: vmz") + "events: []\n", "vmz", 'unknown backend "vmz"'],
      [BASE + "events: []\ncolour: red\n", "colour", 'unknown key "colour"'],
      [BASE.replace("cpu: dmr", "cpu: m68k") + "events: []\n", "m68k", 'unknown CPU profile "m68k"'],
    ];
    for (const [text, token, msg] of cases) {
      const m = errorOf(text);
      expect(m.startsWith(`${at("/tmp/s.yaml", text, token)}: ${msg}`), m).toBe(true);
    }
  });

  test("a design given by path is read relative to the scenario and validated", () => {
    const s = parseScenario(BASE.replace("design: asm-conditional", "design: ./mine.yaml") + "events: []\n", "/tmp/x/s.yaml", opts);
    expect(s.design.name).toBe("file-design");
    expect(s.design.egprHome).toBe("fpstate");
  });

  test("an inline design is validated with positions inside the scenario", () => {
    const text = BASE.replace("design: asm-conditional", "design:\n  name: inline\n  description: d\n  source: s\n  egprHome: regs\n  actions:\n    - { anchor: nowhere, op: load-egprs }") + "events: []\n";
    expect(errorOf(text).startsWith(`${at("/tmp/s.yaml", text, "nowhere")}: unknown anchor "nowhere"`)).toBe(true);
  });
});

const eventArb: fc.Arbitrary<KvmxEvent> = fc.oneof(
  fc.record({ kind: fc.constant("guest-write"), reg: fc.constantFrom("rax", "r16", "r31"), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => `0x${v.toString(16)}`) }),
  fc.record({ kind: fc.constant("guest-read"), reg: fc.constantFrom("r16", "r17") }),
  fc.record({ kind: fc.constant("guest-xsetbv"), value: fc.constantFrom("0x3", "0xe02e7") }),
  fc.record({ kind: fc.constant("nmi"), site: fc.constantFrom("guest", "vmx:handle-nmi") }),
  fc.record({ kind: fc.constant("set-xsave"), apx: fc.array(fc.constantFrom("0x1", "0x2"), { maxLength: 16 }) }),
  fc.constantFrom<KvmxEvent>({ kind: "reset" }, { kind: "init" }, { kind: "get-xsave" }, { kind: "migrate", design: "fpstate" }),
) as fc.Arbitrary<KvmxEvent>;

describe("scenarioToYaml", () => {
  ftest.prop([fc.array(eventArb, { maxLength: 12 }), fc.boolean(), fc.boolean()])("parse(scenarioToYaml(s)) gives back s", (events, kernelApx, ok) => {
    const text = scenarioToYaml(
      { name: "ce", backend: "fake", design: "early-xcr0", host: { cpu: "dmr", kernelApx }, guest: { apx: true }, events, expect: ok ? { ok: true } : { violations: ["no-leak"] } },
      "counterexample\nfound by kvmx check",
    );
    const s: Scenario = parseScenario(text, "/tmp/ce.yaml", opts);
    expect(s.events).toEqual(events);
    expect(s.host.kernelApx).toBe(kernelApx);
    expect(s.design.name).toBe("early-xcr0");
    expect(s.expect?.violations).toEqual({ exactly: ok ? [] : ["no-leak"] });
    expect(text.startsWith("# counterexample\n# found by kvmx check\n")).toBe(true);
  });
});
