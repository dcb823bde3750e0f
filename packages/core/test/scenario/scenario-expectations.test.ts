/**
 * The scenario files that say what they expect (scenarios/*.yaml), run on the model with the real
 * VMX backends — and each expectation form shown to FAIL when the expectation or the model is wrong:
 * every mutation below changes one expectation, one model input or one backend variant of a
 * scenario that holds, and the run must then fail with the message the expectation gives.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { parseScenario } from "../../src/scenario/scenario-file.js";
import { runScenario, type ScenarioRun } from "../../src/scenario/run-scenario.js";
import { applyEvent } from "../../src/kvm/apply-event.js";
import { createMachine } from "../../src/kvm/machine.js";
import type { VendorOps } from "../../src/kvm/vendor-ops.js";
// Core knows no vendor: running a scenario needs a backend, so these tests take VMX's from its source.
import { createNestedVmxBackend, vmxBackend, vmxNestedBackend } from "../../../vmx/src/index.js";
import { at, scenarioErrorOf } from "./text-position.js";

const dir = fileURLToPath(new URL("../../../../scenarios/", import.meta.url));
const path = (f: string) => join(dir, f);
const text = (f: string) => readFileSync(path(f), "utf8");
const registryOf = (backends: readonly VendorOps[]) => (n: string) => backends.find((b) => b.name === n);
const registry = registryOf([vmxBackend, vmxNestedBackend]);
const run = (f: string, body = text(f), backend = registry): ScenarioRun =>
  runScenario(parseScenario(body, path(f), { backend }));

/** The scenario's text with `from` replaced by `to` (the test fails when `from` is not there). */
function mutated(f: string, from: string, to: string): string {
  const t = text(f);
  expect(t.includes(from), `${f} contains ${JSON.stringify(from)}`).toBe(true);
  return t.replace(from, to);
}

const SCENARIOS = [
  "xsetbv-faults-and-cr4-osxsave.yaml",
  "get-set-xsave-component-19.yaml",
  "set-xsave-apx-on-non-apx-host.yaml",
  "sync-regs-kvm-run.yaml",
  "nested-l1-l2-registers.yaml",
  "fastpath-off-c-xfeatures.yaml",
  "cpu-profile-spr-with-apx.yaml",
  "cpu-profile-from-dump-file.yaml",
  "guest-cpuid-leaves.yaml",
  "vm-fail-upstream-v4.yaml",
  "push2pop2-ud-apx-off-guest.yaml",
  "fastpath-stale-egpr-c-xfeatures.yaml",
  "nmi-after-vmexit-mapxf.yaml",
  "findings/init-zeroes-egprs.yaml",
] as const;

describe("scenarios that say what they expect hold on the model", () => {
  for (const f of SCENARIOS) {
    test(f, () => {
      const r = run(f);
      expect(r.expectationFailures).toEqual([]);
      expect(r.ok).toBe(true);
      // Every one of them checks something written in it.
      expect(r.expectations.length + r.events.reduce((n, e) => n + e.expectations.length, 0)).toBeGreaterThan(0);
    });
  }
});

/** [what it shows, file, replace this, with this, a failure must contain this]. */
const MUTATIONS: [string, string, string, string, string][] = [
  // the INIT finding rests on egprInitValue: with INIT defined to zero R16–R31 nothing breaks
  ["INIT defined to zero R16–R31", "findings/init-zeroes-egprs.yaml", "guest: { apx: true }\n", "guest: { apx: true }\noptions: { egprInitValue: zeros }\n", "expected a guest-integrity violation, none happened"],
  // guest faults: vector, error code, who raised it, none
  ["#GP(0) expected, #UD written", "xsetbv-faults-and-cr4-osxsave.yaml", 'expect: { fault: "#GP(0)", xcr0: 0x800e7 }', 'expect: { fault: "#UD", xcr0: 0x800e7 }', "guest faults: #GP(0) (queued by KVM), expected #UD"],
  ["error code", "xsetbv-faults-and-cr4-osxsave.yaml", "errorCode: 0, by: kvm", "errorCode: 1, by: kvm", "expected #GP(1) (queued by KVM)"],
  ["raised by the CPU, not queued by KVM", "xsetbv-faults-and-cr4-osxsave.yaml", "fault: { vector: UD, by: cpu }", "fault: { vector: UD, by: kvm }", "expected #UD (queued by KVM)"],
  ["fault none where KVM queues #GP", "xsetbv-faults-and-cr4-osxsave.yaml", "  - do: guest-xsetbv 0x800e3          # AVX-512 without YMM: __kvm_set_xcr refuses\n    expect: { fault: \"#GP(0)\"", "  - do: guest-xsetbv 0x800e3\n    expect: { fault: none", "guest faults: #GP(0) (queued by KVM), expected none"],
  ["CR4.OSXSAVE stays set: no #UD", "xsetbv-faults-and-cr4-osxsave.yaml", "do: guest-mov-cr4 0x620", "do: guest-mov-cr4 0x40620", "guest faults: none, expected #UD (raised by the CPU)"],
  ["kvm_load_xfeatures skipped: no host XSETBV", "xsetbv-faults-and-cr4-osxsave.yaml", "expect: { cost: { xsetbv: 0 }, result: ok }", "expect: { cost: { xsetbv: 2 }, result: ok }", "xsetbv 0, expected 2"],
  // ioctl results and errno
  ["KVM_SET_XCRS errno", "xsetbv-faults-and-cr4-osxsave.yaml", "expect: { result: EINVAL, ioctls: { KVM_SET_XCRS: EINVAL }", "expect: { result: ok, ioctls: { KVM_SET_XCRS: EINVAL }", "KVM_SET_XCRS failed: EINVAL (__kvm_set_xcr rejects 0x8001f"],
  ["ioctls by name", "get-set-xsave-component-19.yaml", "ioctls: { KVM_SET_XSAVE: EINVAL }", "ioctls: { KVM_SET_XSAVE: ok }", "KVM_SET_XSAVE → EINVAL"],
  ["KVM_SET_XSAVE with bit 19 on a KVM without APX", "set-xsave-apx-on-non-apx-host.yaml", "host: { cpu: spr, kernelApx: false }", "host: { cpu: dmr, kernelApx: false }", "KVM_SET_XSAVE → ok, expected EINVAL"],
  // KVM's XCR0 and CR4 after an event, for the scenario too
  ["XCR0 after an event", "xsetbv-faults-and-cr4-osxsave.yaml", "expect: { result: ok, xcr0: 0x80007 }", "expect: { result: ok, xcr0: 0x800e7 }", "KVM's XCR0 0x80007, expected 0x800e7"],
  ["XCR0 after the last event", "xsetbv-faults-and-cr4-osxsave.yaml", "expect: { ok: true, xcr0: 0x800e7 }", "expect: { ok: true, xcr0: 0x7 }", "KVM's XCR0 0x800e7, expected 0x7"],
  ["CR4", "xsetbv-faults-and-cr4-osxsave.yaml", "expect: { cr4: 0x620, fault: none }", "expect: { cr4: 0x40620, fault: none }", "guest CR4 0x620, expected 0x40620"],
  ["exit", "xsetbv-faults-and-cr4-osxsave.yaml", "exit: xsetbv }", "exit: io }", "the guest stopped on xsetbv, expected io"],
  // KVM_GET_XSAVE2: XSTATE_BV, component 19, bytes
  ["image bytes", "get-set-xsave-component-19.yaml", '960: "11 11 11 11 11 11 11 11"', '960: "22 11 11 11 11 11 11 11"', "bytes at 960: 1111111111111111, expected 2211111111111111"],
  ["component 19 register", "get-set-xsave-component-19.yaml", "xsave: { apx: { r16: 0x2222222222222222, r31: 0x0 } }", "xsave: { apx: { r16: 0x2222222222222222, r31: 0x3131313131313131 } }", "component 19 r31 = 0x0, expected 0x3131313131313131"],
  ["XSTATE_BV bits", "get-set-xsave-component-19.yaml", "xstateBv: { has: [APX], lacks: [BNDREGS, BNDCSR] }", "xstateBv: { has: [APX, BNDREGS] }", "bit 3 clear"],
  ["XSTATE_BV[19] while the guest's XCR0.APX is 0 (upstream v4): a CPUID without APX has none", "get-set-xsave-component-19.yaml", "guest: { apx: true }", "guest: { apx: false }", "bit 19 clear"],
  // the values the guest reads
  ["a guest-read's value", "get-set-xsave-component-19.yaml", "expect: { read: 0x2222222222222222 }", "expect: { read: 0x1111111111111111 }", "guest read r16 = 0x2222222222222222, expected 0x1111111111111111"],
  ["CPUID as the guest reads it", "guest-cpuid-leaves.yaml", "guest: { apx: true }", "guest: { apx: false }", "guest read rdx = 0x0, expected 0x200000"],
  ["CPUID sub-leaf", "guest-cpuid-leaves.yaml", "do: guest-cpuid 7 1", "do: guest-cpuid 7 0", "guest read rcx = 0x8, expected 0x20"],
  // KVM_RUN with sync_regs
  ["s.regs", "sync-regs-kvm-run.yaml", "syncRegs: { rax: 0x5, rbx: 0x6 }", "syncRegs: { rax: 0x5, rbx: 0x7 }", "kvm_run->s.regs.rbx = 0x6, expected 0x7"],
  ["no store_regs without KVM_SYNC_X86_REGS in kvm_valid_regs", "sync-regs-kvm-run.yaml", "syncRegs: { valid: 1, dirty: 1,", "syncRegs: { valid: 0, dirty: 1,", "store_regs did not run"],
  ["kvm_dirty_regs loads s.regs", "sync-regs-kvm-run.yaml", "syncRegs: { valid: 1, dirty: 1,", "syncRegs: { valid: 1, dirty: 0,", "guest read rax = 0x0, expected 0x5"],
  ["EINVAL for a bit outside REGS|SREGS|EVENTS", "sync-regs-kvm-run.yaml", "syncRegs: { valid: 0x9 }", "syncRegs: { valid: 0x1 }", "KVM_RUN ok, expected EINVAL"],
  // avail/dirty masks
  ["regs_avail: store_regs made RSP available", "sync-regs-kvm-run.yaml", "avail: { has: [RSP, RIP] }", "avail: { lacks: [RSP] }", "RSP set"],
  ["regs_avail after an exit (VMX's lazy set)", "sync-regs-kvm-run.yaml", "expect: { avail: { lacks: [RSP] }, dirty: [RIP] }", "expect: { avail: { has: [RSP] }, dirty: [RIP] }", "RSP not set"],
  ["regs_dirty exactly", "sync-regs-kvm-run.yaml", "expect: { read: 0x8000, dirty: [RIP] }", "expect: { read: 0x8000, dirty: [] }", "also RIP"],
  ["regs_dirty after KVM_SET_REGS", "sync-regs-kvm-run.yaml", "dirty: { has: [RSP, RIP], lacks: [RAX] }", "dirty: { has: [RSP, RIP, RAX] }", "RAX not set"],
  // L1 and L2 told apart
  ["the level a read ran in", "nested-l1-l2-registers.yaml", "reads: { rsp: { value: 0x5000, level: L1 } }", "reads: { rsp: { value: 0x5000, level: L2 } }", "guest read rsp = 0x5000 in L1, expected 0x5000 in L2"],
  ["L1's RSP is not L2's", "nested-l1-l2-registers.yaml", "reads: { rsp: { value: 0x7ffff000, level: L2 } }", "reads: { rsp: { value: 0x5000, level: L2 } }", "guest read rsp = 0x7ffff000 in L2, expected 0x5000 in L2"],
  ["the level after an event", "nested-l1-l2-registers.yaml", "do: vmx-nested:vmlaunch           # VMRESUME\n    expect: { level: L2 }", "do: vmx-nested:vmlaunch           # VMRESUME\n    expect: { level: L1 }", "the vCPU runs L2, expected L1"],
  ["vmcs12's host RSP", "nested-l1-l2-registers.yaml", "vmcs12.host_rsp: 0x5000", "vmcs12.host_rsp: 0x6000", "vmcs12.host_rsp = 0x5000, expected 0x6000"],
  // violations: contains and exactly
  ["contains", "push2pop2-ud-apx-off-guest.yaml", "violations: { contains: [no-host-ud] }", "violations: { contains: [no-host-ud, no-leak] }", "expected a no-leak violation, none happened"],
  ["exactly, for the scenario", "fastpath-stale-egpr-c-xfeatures.yaml", "expect: { violations: [cache-coherence] }", "expect: { violations: [] }", "expected no violation, got cache-coherence"],
  ["contains, for the scenario", "nmi-after-vmexit-mapxf.yaml", "violations: { contains: [apxf-c-needs-apx] }", "violations: { contains: [no-host-ud] }", "expected a no-host-ud violation, none happened"],
  ["an event's ok: true", "fastpath-off-c-xfeatures.yaml", "design: { name: c-xfeatures-no-fastpath, base: c-xfeatures, fastpath: off }", "design: { name: c-xfeatures-fastpath, base: c-xfeatures, fastpath: on }", "expected no violation, got cache-coherence"],
  // CPU profiles from a file or inline
  ["the inline APX leaves are what makes XSETBV succeed", "cpu-profile-spr-with-apx.yaml", "      - { function: 0x7, index: 1, edx: 0x200000 }              # APX_F\n      - { function: 0xd, index: 0, eax: 0xe02e7 }               # XCR0: spr's 0x602e7 | APX\n", "", "guest faults: #GP(0) (queued by KVM), expected none"],
  ["the dump file is the host", "cpu-profile-from-dump-file.yaml", "cpu: profiles/apx-without-amx.json", "cpu: dmr", "guest faults: none, expected #GP(0)"],
  // VM-Fail, cost counters
  ["cost counters of a VM-Fail", "vm-fail-upstream-v4.yaml", "cost: { egprLoads: 16, egprStores: 16, egprClears: 16 }", "cost: { egprLoads: 16, egprStores: 0, egprClears: 16 }", "egprStores 16, expected 0"],
];

describe("each expectation form fails when the expectation or the model is wrong", () => {
  for (const [what, f, from, to, message] of MUTATIONS) {
    test(`${what} (${f})`, () => {
      const r = run(f, mutated(f, from, to));
      expect(r.ok).toBe(false);
      expect(r.expectationFailures.join("\n")).toContain(message);
    });
  }

  test("fastpath off in the design, on in the model: the MSR read back is stale", () => {
    const r = run("fastpath-off-c-xfeatures.yaml", mutated("fastpath-off-c-xfeatures.yaml", "fastpath: off }", "fastpath: on }"));
    expect(r.expectationFailures.join("\n")).toContain("guest read r17 = 0x0, expected 0x1111");
  });

  test("a vmx_switch_vmcs that keeps regs_avail gives L1 L2's RSP (nested backend variant)", () => {
    const broken = createNestedVmxBackend({ switchRegs: "broken-keep-avail" });
    const r = run("nested-l1-l2-registers.yaml", text("nested-l1-l2-registers.yaml"), registryOf([vmxBackend, broken]));
    expect(r.ok).toBe(false);
    expect(r.expectationFailures.join("\n")).toMatch(/rsp|cache-coherence/);
  });

  test("the failure says where the expectation is written", () => {
    const f = "xsetbv-faults-and-cr4-osxsave.yaml";
    const body = mutated(f, "expect: { cr4: 0x620, fault: none }", "expect: { cr4: 0x40620, fault: none }");
    const r = run(f, body);
    const x = r.events.flatMap((e) => e.expectations).find((e) => !e.ok)!;
    expect(x.key).toBe("cr4");
    expect(x.at).toBe(at(path(f), body, "cr4: 0x40620"));
  });
});

describe("expectation and profile errors keep file:line:column", () => {
  const head = "name: s\nbackend: vmx\ndesign: upstream-v4\nhost: { cpu: dmr, kernelApx: false }\nguest: { apx: true }\n";
  const errorOf = (body: string, file = "/tmp/e.yaml", readFile?: (p: string) => string): string =>
    scenarioErrorOf(() => runScenario(parseScenario(body, file, { backend: registry, ...(readFile ? { readFile } : {}) })));
  const cases: [string, string, string][] = [
    [head + "events:\n  - { do: guest-io, expect: { read: 0x1 } }\n", "read", "read is the value a guest-read event's register held"],
    [head + "events: []\nexpect: { fault: none }\n", "fault", 'unknown key "fault" in expect (per-event keys'],
    [head + "events:\n  - { do: guest-io, expect: { fault: \"#UD(0)\" } }\n", '"#UD(0)"', "fault: #UD has no error code"],
    [head + "events:\n  - { do: guest-io, expect: { fault: \"#PF\" } }\n", '"#PF"', 'fault: "#PF" is not none'],
    [head + "events:\n  - { do: guest-io, expect: { result: ENOENT } }\n", "ENOENT", '"ENOENT" is not an ioctl result'],
    [head + "events:\n  - { do: guest-io, expect: { ioctls: { KVM_GET_SREGS: ok } } }\n", "KVM_GET_SREGS", 'unknown key "KVM_GET_SREGS" in ioctls'],
    [head + "events:\n  - { do: guest-io, expect: { avail: [RSP, RXP] } }\n", "RXP", '"RXP" is not a register of KVM\'s enum kvm_reg'],
    [head + "events:\n  - { do: guest-io, expect: { exit: vmcall } }\n", "vmcall", 'exit "vmcall" is not a guest exit'],
    [head + "events:\n  - { do: guest-io, expect: { level: L2 } }\n", "L2", "backend vmx has no nested guest"],
    [head + "events:\n  - { do: guest-io, expect: { vendor: { vmcs12.host_rsp: 0x1 } } }\n", "vmcs12.host_rsp", '"vmcs12.host_rsp" is not a vendor field of backend vmx'],
    [head + "events:\n  - { kind: get-xsave, expect: { xsave: { bytes: { 960: \"111\" } } } }\n", '"111"', "xsave bytes: odd number of hex digits"],
    [head + "events:\n  - { kind: get-xsave, expect: { xsave: { xstateBv: { has: [AMX] } } } }\n", "AMX", '"AMX" is not an XSAVE feature'],
    [head + "events:\n  - { do: guest-io, expect: { violations: { some: [no-leak] } } }\n", "some", 'unknown key "some" in violations'],
    [head + "events:\n  - { do: guest-io, expect: { cost: { cycles: 1 } } }\n", "cycles", 'unknown key "cycles" in cost'],
    [head + "events:\n  - { kind: guest-io, syncRegs: { valid: 2 } }\n", "2 }", "syncRegs: only the REGS class (1) is modelled here"],
    [head + "events:\n  - { kind: guest-io, syncRegs: { regs: { r16: 0x1 } } }\n", "r16", 'unknown key "r16" in syncRegs regs'],
    [head + "events:\n  - { kind: guest-cpuid, leaf: 0x100000000 }\n", "0x100000000", "guest-cpuid leaf: 0x100000000 does not fit in 32 bits"],
    // CPU profiles: MPX and APX together, a bad entry, a missing dump file
    [
      head.replace("host: { cpu: dmr, kernelApx: false }", "host:\n  cpu:\n    base: dmr\n    cpuid:\n      - { function: 0xd, index: 0, eax: 0x8001f }\n      - { function: 0xd, index: 3, eax: 64, ebx: 960 }\n      - { function: 0xd, index: 4, eax: 64, ebx: 1024 }\n") + "events: []\n",
      "- { function: 0xd, index: 0",
      'CPUID dump "dmr+cpuid" enumerates both MPX and APX',
    ],
    [head.replace("cpu: dmr", "cpu: { base: dmr, cpuid: [ { function: 7, edy: 1 } ] }") + "events: []\n", "edy", 'unknown key "edy" in CPUID entry'],
    [head.replace("cpu: dmr", "cpu: ./no-such-dump.json") + "events: []\n", "./no-such-dump.json", "cannot read CPUID dump /tmp/no-such-dump.json"],
    [head.replace("cpu: dmr", "cpu: { base: m68k }") + "events: []\n", "m68k", 'unknown CPU profile "m68k"'],
    // A design based on a built-in
    [head.replace("design: upstream-v4", "design: { name: x, base: c-xfeatures, fastpath: sometimes }") + "events: []\n", "sometimes", 'unknown fastpath setting "sometimes"'],
    [head.replace("design: upstream-v4", "design: { name: x, base: c-xfeaturez }") + "events: []\n", "c-xfeaturez", 'base "c-xfeaturez" is not a built-in design'],
    // An event the model refuses while running it: at the event's position
    [head + "events:\n  - guest-io\n  - guest-mov-cr4 0x40600\n", "guest-mov-cr4 0x40600", "guest-mov-cr4: only CR4.OSXSAVE (bit 18) may change"],
  ];
  for (const [body, token, message] of cases) {
    test(message, () => {
      const m = errorOf(body);
      expect(m, m).toContain(`${at("/tmp/e.yaml", body, token)}: ${message}`);
    });
  }

  test("a CPUID dump file's own errors point into that file", () => {
    const dump = '{ "cpuid": [ { "function": "0xd", "eax": "0x3" }, { "function": 7, "ecx": "zz" } ] }';
    const body = head.replace("cpu: dmr", "cpu: profiles/bad.json") + "events: []\n";
    const m = errorOf(body, "/tmp/e.yaml", () => dump);
    expect(m).toContain(`${at("/tmp/profiles/bad.json", dump, '"zz"')}: ecx: expected a u64`);
  });
});

describe("the observation channel", () => {
  const m = createMachine({ backend: vmxBackend, design: "upstream-v4", host: { cpu: "dmr", kernelApx: false }, guest: { apx: true } });
  const read = { kind: "guest-read", reg: "rax" } as const;

  test("nothing is recorded while exploring (no trace, no observe)", () => {
    expect(applyEvent(m.config, m.initialState().copy(), read).observations).toBeUndefined();
  });

  test("recorded when asked, without a trace, and the same as with one", () => {
    const asked = applyEvent(m.config, m.initialState().copy(), read, undefined, { observe: true }).observations;
    const traced = m.apply(m.initialState(), read, []).observations;
    expect(asked).toEqual(traced);
    expect(asked).toContainEqual({ kind: "guest-read", reg: "rax", value: 0n });
    expect(asked).toContainEqual(expect.objectContaining({ kind: "ioctl", ioctl: "KVM_RUN", ok: true, exit: "io", toUserspace: true }));
  });

  test("observing changes nothing in the state", () => {
    const a = applyEvent(m.config, m.initialState().copy(), { kind: "get-xsave" }).state;
    const b = applyEvent(m.config, m.initialState().copy(), { kind: "get-xsave" }, undefined, { observe: true }).state;
    expect(m.key(a)).toBe(m.key(b));
  });
});
