import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import {
  applyEvents,
  createMachine, parseScenario, runScenario,
  type KvmxEvent, type Machine, type MachineState, type TraceStep, type VendorOps,
} from "@kvmx/core";
import {
  L1_CRS, L1_HOST_RIP, L2_ENTRY, VMCS12_EXTENDED_INSTRUCTION_INFO_OFFSET, createNestedVmxBackend, decodeExtendedInfo, isGuestMode,
  VMCS01_FIELD, VMCS02_FIELD, VMCS_FIELD, vmcs12Read, vmxBackend, vmxNestedBackend,
} from "../src/index.js";

function run(m: Machine, events: readonly KvmxEvent[], s: MachineState = m.initialState()) {
  const r = applyEvents(m, events, s);
  return { s: r.state, traces: r.traces, violations: r.violations };
}
const machine = (o: { apx?: boolean; pre?: boolean; backend?: VendorOps } = {}) =>
  createMachine({
    backend: o.backend ?? vmxNestedBackend, design: "asm-conditional", host: { cpu: "dmr", kernelApx: false },
    guest: { apx: o.apx ?? true }, pre: o.pre ?? false,
  });
const LAUNCH: KvmxEvent = { kind: "vmx-nested:vmlaunch" };
const note = (t: TraceStep[], site: string): string => t.filter((x) => x.site === site).map((x) => x.description).join(" | ");

describe("nested VM-entry (nested_vmx_enter_non_root_mode)", () => {
  test("L1 VMLAUNCH exits to L0 (reason 20), L0 switches to vmcs02 and L2's RSP/RIP become dirty for it", () => {
    const m = machine();
    const { s, traces, violations } = run(m, [{ kind: "guest-io" }, LAUNCH]);
    expect(violations).toEqual([]);
    const v = s.vcpus[0]!;
    expect(isGuestMode(v)).toBe(true);
    expect(note(traces[1]!, "vmx:vmexit")).toMatch(/L1 executed VMLAUNCH/);
    expect(note(traces[1]!, "x86:handle-exit")).toMatch(/vmx_switch_vmcs → vmcs02.*nested VM-entry/);
    expect(v.vendorGet(VMCS01_FIELD.VM_EXIT_REASON)).toBe(20n);
    expect(v.regsDirty).toBe((1n << 4n) | (1n << BigInt(v.layout.RIP)));
    expect(v.rip).toBe(L2_ENTRY.rip);
    expect(v.regs.get(4)).toBe(L2_ENTRY.rsp);
    // The next entry writes them into vmcs02 (the model's guest programs then start at GUEST_CODE).
    const next = run(m, [{ kind: "guest-io" }], s);
    expect(note(next.traces[0]!, "vmx:vcpu-run")).toMatch(/RSP, RIP written to the VMCS/);
    expect(next.violations).toEqual([]);
  });

  test("VMRESUME of a launched vmcs12 resumes L2; a second VMLAUNCH would be VMfailValid", () => {
    const m = machine();
    const a = run(m, [LAUNCH, { kind: "guest-io" }, LAUNCH]);
    expect(a.violations).toEqual([]);
    expect(note(a.traces[2]!, "vmx:vmexit")).toMatch(/VMRESUME/);
    expect(isGuestMode(a.s.vcpus[0]!)).toBe(true);
  });
});

describe("nested VM-exit (nested_vmx_vmexit) and L0-handled L2 exits", () => {
  test("a reflected exit syncs L2's RSP/RIP into vmcs12 through cache_reg (vmcs02 still loaded), then L1 resumes at its host RIP", () => {
    const m = machine();
    const { s, traces, violations } = run(m, [LAUNCH, { kind: "vmx-nested:l2-exit-reflected" }]);
    expect(violations).toEqual([]);
    const v = s.vcpus[0]!;
    expect(isGuestMode(v)).toBe(false);
    expect(vmcs12Read(v, "vm_exit_reason")).toBe(10n); // CPUID: always L1's
    // L2 ran its CPUID at GUEST_CODE; RIP was lazily loaded from vmcs02 (avail clear after the exit).
    expect(vmcs12Read(v, "guest_rip")).toBe(0x10_0000n);
    expect(v.rip).toBe(L1_HOST_RIP);
    expect(note(traces[1]!, "x86:handle-exit")).toMatch(/vmx_switch_vmcs → vmcs01.*nested VM-exit to L1/);
  });

  test("CR3 and the PDPTRs are made current from vmcs02 before the switch; L1 gets its own CRs back", () => {
    const m = machine();
    const { s, violations } = run(m, [LAUNCH, { kind: "vmx-nested:l2-exit-reflected" }]);
    expect(violations).toEqual([]);
    const v = s.vcpus[0]!;
    // CR3 was lazily cleared at the exit; sync_vmcs02_to_vmcs12 read it through vmx_cache_reg from vmcs02.
    expect(vmcs12Read(v, "guest_cr3")).toBe(L2_ENTRY.cr3);
    expect(v.vendorGet(VMCS02_FIELD.GUEST_CR3)).toBe(L2_ENTRY.cr3);
    expect(v.cr3).toBe(L1_CRS.cr3);
    expect(v.vendorGet(VMCS_FIELD.GUEST_CR3)).toBe(L1_CRS.cr3);
    expect(vmcs12Read(v, "guest_cr4")).toBe(L1_CRS.cr4);
  });

  test("L0 handles its preemption timer and NMIs for L2; L2 stays loaded; only the timer may use the fastpath", () => {
    const m = machine();
    const { s, traces, violations } = run(m, [LAUNCH, { kind: "vmx-nested:l2-exit-l0" }, { kind: "nmi", site: "guest" }, { kind: "vmx-nested:l2-exit-l0" }]);
    expect(violations).toEqual([]);
    expect(isGuestMode(s.vcpus[0]!)).toBe(true);
    expect(note(traces[1]!, "x86:fastpath")).toMatch(/EXIT_HANDLED/);
    expect(note(traces[3]!, "x86:handle-exit")).toMatch(/L2 exit handled by L0/);
    expect(note(traces[3]!, "vmx:handle-nmi")).toMatch(/host NMI handler/);
  });

  test("WRMSRNS-immediate in L2 is reflected, not fastpathed; in L1 it takes the fastpath", () => {
    const m = machine();
    const l2 = run(m, [{ kind: "guest-xsetbv", value: "0x800e7" }, LAUNCH, { kind: "guest-wrmsrns-imm", reg: "r17" }]);
    expect(l2.violations).toEqual([]);
    expect(note(l2.traces[2]!, "x86:fastpath")).toMatch(/NONE/);
    expect(isGuestMode(l2.s.vcpus[0]!)).toBe(false);
    const l1 = run(m, [{ kind: "guest-wrmsrns-imm", reg: "rdx" }]);
    expect(note(l1.traces[0]!, "x86:fastpath")).toMatch(/REENTER_GUEST/);
  });

  test("vmcs12's extended instruction information (offset 336) is copied only when L1's CPUID has APX", () => {
    expect(VMCS12_EXTENDED_INSTRUCTION_INFO_OFFSET).toBe(336);
    const withApx = run(machine({ apx: true }), [{ kind: "guest-xsetbv", value: "0x800e7" }, LAUNCH, { kind: "guest-wrmsrns-imm", reg: "r17" }]);
    expect(withApx.violations).toEqual([]);
    expect(decodeExtendedInfo(vmcs12Read(withApx.s.vcpus[0]!, "extended_instruction_info")).reg1).toBe(17);
    // No APX in L1's CPUID: the CPU (APX_F) still writes 0x2406 in vmcs02, but vmcs12 does not get it.
    const noApx = run(machine({ apx: false }), [LAUNCH, { kind: "guest-wrmsrns-imm", reg: "rdx" }]);
    expect(noApx.violations).toEqual([]);
    const v = noApx.s.vcpus[0]!;
    expect(vmcs12Read(v, "extended_instruction_info")).toBe(0n);
    expect(decodeExtendedInfo(v.vendorGet(VMCS02_FIELD.EXTENDED_INSTRUCTION_INFO)).reg1).toBe(2);
    expect(vmcs12Read(v, "vm_exit_reason")).toBe(85n);
  });
});

describe("L2 EGPRs follow the running design", () => {
  test("asm-conditional: L2 sees L1's R16, L1 sees L2's R17 after a reflected exit, in POST and PRE", () => {
    for (const pre of [false, true]) {
      const { violations } = run(machine({ pre }), [
        { kind: "guest-xsetbv", value: "0x800e7" },
        { kind: "guest-write", reg: "r16", value: "0x1616" },
        LAUNCH,
        { kind: "guest-read", reg: "r16" },
        LAUNCH,
        { kind: "guest-write", reg: "r17", value: "0x1717" },
        { kind: "guest-read", reg: "r17" },
      ]);
      expect(violations).toEqual([]);
    }
  });

  test("the nested backend still detects a design's hazard: asm-unconditional #UDs with an APX-off guest in L2", () => {
    const m = createMachine({ backend: vmxNestedBackend, design: "asm-unconditional", host: { cpu: "dmr", kernelApx: false }, guest: { apx: true } });
    const { violations } = run(m, [LAUNCH, { kind: "guest-io" }]);
    expect(violations.map((v) => v.invariant)).toContain("no-host-ud");
  });

  test("a nested backend with a broken vmx_switch_vmcs is caught at the first reflected exit (RSP/RIP made current, then kept)", () => {
    const broken = createNestedVmxBackend({ name: "vmx-nested-broken", switchRegs: "broken-keep-avail" });
    expect(run(machine({ backend: broken }), [LAUNCH]).violations).toEqual([]);
    const { violations } = run(machine({ backend: broken }), [LAUNCH, { kind: "vmx-nested:l2-exit-reflected" }]);
    expect(violations.map((v) => v.invariant)).toContain("cache-coherence");
  });

  test("vendor events: VMLAUNCH offered in L1, the two L2 exits in L2; unknown kinds are InputErrors", () => {
    const m = machine();
    const s0 = m.initialState();
    expect(m.events(s0).filter((e) => e.kind.startsWith("vmx-nested:")).map((e) => e.kind)).toEqual(["vmx-nested:vmlaunch"]);
    const s1 = m.apply(s0, LAUNCH).state;
    expect(m.events(s1).filter((e) => e.kind.startsWith("vmx-nested:")).map((e) => e.kind)).toEqual(["vmx-nested:l2-exit-reflected", "vmx-nested:l2-exit-l0"]);
    expect(() => m.apply(s0, { kind: "vmx-nested:bogus" })).toThrow(/unknown to backend vmx-nested/);
    expect(vmxBackend.nested).toBeUndefined();
    expect(vmxNestedBackend.nested).toBeDefined();
  });
});

describe("scenarios/nested-l2-egprs-asm-conditional.yaml produces its documented outcome", () => {
  test("no violation; vmcs12+336 names R17 after L2's WRMSRNS", () => {
    const file = fileURLToPath(new URL("../../../scenarios/nested-l2-egprs-asm-conditional.yaml", import.meta.url));
    const sc = parseScenario(readFileSync(file, "utf8"), file, { backend: (n) => (n === "vmx-nested" ? vmxNestedBackend : undefined) });
    const r = runScenario(sc);
    expect(r.expectationFailures).toEqual([]);
    expect(r.violations).toEqual([]);
    const last = r.events.find((e) => e.event.kind === "guest-wrmsrns-imm")!;
    expect(last.steps.find((s) => s.site === "x86:handle-exit")!.description).toMatch(/extended instruction info \(offset 336\) copied/);
  });
});
