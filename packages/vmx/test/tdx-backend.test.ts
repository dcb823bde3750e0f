import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect } from "vitest";
import { fc, test } from "@fast-check/vitest";
import {
  applyEvents,
  BUILTIN_DESIGNS, RunCtx, createMachine, maskNames, parseScenario, ripRead, runScenario,
  type Design, type KvmxEvent, type Machine, type MachineState, type ModelOptions, type TraceStep,
} from "@kvmx/core";
import { KVM_ENOSYS, TDX_ARG_GPRS, tdXfam, tdvpsGpr, tdxBackend, tdxRegsAvailSet, tdxRunSites, xfamXcr0 } from "../src/index.js";

function run(m: Machine, events: readonly KvmxEvent[], s: MachineState = m.initialState()) {
  const r = applyEvents(m, events, s);
  return { s: r.state, traces: r.traces, violations: r.violations };
}
const machine = (o: { apx?: boolean; kernelApx?: boolean; options?: Partial<ModelOptions> } = {}) =>
  createMachine({
    backend: tdxBackend, design: "asm-conditional", host: { cpu: "dmr", kernelApx: o.kernelApx ?? false },
    guest: { apx: o.apx ?? false }, ...(o.options ? { options: o.options } : {}),
  });
const note = (t: TraceStep[], site: string): string => t.filter((x) => x.site === site).map((x) => x.description).join(" | ");

describe("TDX: the module owns the TD's registers (docs/facts.md#tdx)", () => {
  test("site order: vmx_handle_nmi runs before tdx_load_host_xsave_state, both right after the TD exit", () => {
    expect(tdxRunSites().map((s) => s.id)).toEqual([
      "tdx:vcpu-run", "tdx:asm-seamcall", "tdx:asm-before-vp-enter", "tdx:tdh-vp-enter", "guest", "tdx:td-exit",
      "tdx:asm-after-td-exit", "tdx:copy-args", "tdx:handle-nmi", "tdx:load-host-xsave", "tdx:clear-avail",
    ]);
  });

  test("after each TD exit regs_avail is exactly TDX_REGS_AVAIL_SET (no RSP, RIP, CRs, RFLAGS, segments)", () => {
    const { s, violations } = run(machine(), [{ kind: "guest-io" }, { kind: "guest-io" }]);
    expect(violations).toEqual([]);
    const v = s.vcpus[0]!;
    expect(v.regsAvail).toBe(tdxRegsAvailSet(v.layout));
    expect(maskNames(v.layout, v.regsAvail)).not.toContain("VCPU_REG_RSP");
    expect(maskNames(v.layout, v.regsAvail)).toContain("VCPU_REG_EXIT_INFO_2");
  });

  test("cache_reg for a TD is a recorded WARN, never an exception, and the register stays unavailable", () => {
    const m = machine();
    const s = run(m, [{ kind: "guest-io" }]).s;
    const ctx = new RunCtx(m.config, s, []);
    ripRead(ctx);
    ripRead(ctx);
    expect(ctx.st.warnings).toBe(2);
  });

  test("the TD's GPRs live in the TDVPS; regs[] only ever holds TDVMCALL arguments (RCX, RDX, R8..R15)", () => {
    const { s, violations } = run(machine(), [
      { kind: "guest-write", reg: "rbx", value: "0x1234" },
      { kind: "guest-write", reg: "r10", value: "0xaaaa" },
      { kind: "guest-read", reg: "rbx" },
      { kind: "guest-read", reg: "r10" },
    ]);
    expect(violations).toEqual([]);
    const v = s.vcpus[0]!;
    expect(tdvpsGpr(v, 3).value).toBe(0x1234n);
    expect(tdvpsGpr(v, 10).value).toBe(0xaaaan);
    expect(v.regs.get(3)).toBe(0n);
    // R10 in regs[] is the TDVMCALL status, not the TD's R10.
    expect(v.regs.get(10)).toBe(0n);
    expect(v.regs.get(11)).toBe(30n); // the leaf of the last TDVMCALL (IO)
    expect(TDX_ARG_GPRS).toEqual([1, 2, 8, 9, 10, 11, 12, 13, 14, 15]);
  });

  test("CPUID through TDVMCALL: R12/R13 in, R12..R15 out, status 0 in R10; the TD's #VE handler puts them in RAX..RDX", () => {
    const m = machine();
    const { s, traces, violations } = run(m, [{ kind: "guest-cpuid" }, { kind: "guest-read", reg: "rbx" }, { kind: "guest-read", reg: "rdx" }]);
    expect(violations).toEqual([]);
    expect(s.vcpus[0]!.regs.get(10)).toBe(0n);
    expect(note(traces[0]!, "x86:handle-exit")).toMatch(/TDVMCALL CPUID: R12\/R13 in, R12..R15 out/);
    expect(note(traces[1]!, "guest")).toMatch(/rax, rbx, rcx, rdx ← results.*guest read rbx = 0x756e6547 as expected/);
  });

  test("a KVM hypercall (R10 ≠ 0) copies R10..R14 into RAX, RBX, RCX, RDX, RSI; the result returns in R10 and lands in the TD's RAX", () => {
    const m = machine();
    const a = run(m, [{ kind: "guest-write", reg: "rbx", value: "0xb0b" }, { kind: "tdx:hypercall", nr: 9 }]);
    expect(a.violations).toEqual([]);
    const v = a.s.vcpus[0]!;
    expect(v.regs.get(3)).toBe(0xb0bn); // RBX ← R11 (the TD's first hypercall argument: its RBX)
    expect(v.regs.get(0)).toBe(BigInt.asUintN(64, -KVM_ENOSYS));
    expect(v.regs.get(10)).toBe(BigInt.asUintN(64, -KVM_ENOSYS));
    const b = run(m, [{ kind: "guest-read", reg: "rax" }], a.s);
    expect(b.violations).toEqual([]);
    expect(note(b.traces[0]!, "guest")).toMatch(/rax ← results/);
    expect(() => m.apply(a.s, { kind: "tdx:hypercall", nr: 0 })).toThrow(/R10 ≠ 0/);
    expect(() => m.apply(a.s, { kind: "tdx:nope" })).toThrow(/unknown to backend tdx/);
  });

  test("XFAM decides APX inside the TD: without it XSETBV with bit 19 #GPs in the TD; with it the TD keeps R16–R31", () => {
    const no = run(machine({ apx: false }), [{ kind: "guest-xsetbv", value: "0x800e7" }]);
    expect(no.violations).toEqual([]);
    expect(tdXfam(no.s.vcpus[0]!) & (1n << 19n)).toBe(0n);
    expect(note(no.traces[0]!, "guest")).toMatch(/#GP/);
    const yes = run(machine({ apx: true }), [
      { kind: "guest-xsetbv", value: "0x800e7" },
      { kind: "guest-write", reg: "r20", value: "0x2020" },
      { kind: "nmi", site: "guest" },
      { kind: "guest-read", reg: "r20" },
    ]);
    expect(yes.violations).toEqual([]);
    expect(tdvpsGpr(yes.s.vcpus[0]!, 20).value).toBe(0x2020n);
  });

  test("XCR0 after a TD exit is XFAM's, KVM restores the host's; KVM never loads the TD's XCR0", () => {
    const m = machine({ apx: false });
    const { s, traces, violations } = run(m, [{ kind: "guest-xsetbv", value: "0x7" }, { kind: "guest-io" }]);
    expect(violations).toEqual([]);
    const xfam = tdXfam(s.vcpus[0]!);
    const t = traces[1]!;
    expect(t.find((x) => x.site === "tdx:tdh-vp-enter")!.xcr0).toBe(0x7n);
    expect(t.find((x) => x.site === "tdx:td-exit")!.xcr0).toBe(xfamXcr0(xfam));
    expect(t.find((x) => x.site === "tdx:handle-nmi")!.xcr0).toBe(xfamXcr0(xfam));
    expect(t.find((x) => x.site === "tdx:load-host-xsave")!.xcr0).toBe(m.config.hostXcr0);
    for (const step of t) if (step.kind !== "hw" && step.kind !== "guest") expect(step.xcr0).not.toBe(0x7n);
    expect(note(t, "x86:load-guest-xfeatures")).toMatch(/switched by module/);
  });

  test("state ioctls on the TD fail with EINVAL", () => {
    const { traces } = run(machine(), [{ kind: "get-regs" }, { kind: "get-xsave" }, { kind: "set-xcrs", xcr0: "0x3" }, { kind: "set-regs", regs: { rax: "0x1" } }]);
    for (const t of traces) expect(t[0]!.description).toMatch(/EINVAL: protected guest state/);
  });

  test("ASSUMPTIONS.tdxModuleHostEgprs: what R16–R31 hold after a TD exit with XFAM APX (restored host values vs zeros)", () => {
    const ev: KvmxEvent[] = [{ kind: "guest-xsetbv", value: "0x800e7" }, { kind: "guest-write", reg: "r16", value: "0x16" }];
    const restored = run(machine({ apx: true }), ev);
    const cleared = run(machine({ apx: true, options: { tdxModuleHostEgprs: "cleared" } }), ev);
    const exitTags = (t: TraceStep[]) => t.find((x) => x.site === "tdx:td-exit")!.egprTags;
    expect(exitTags(restored.traces[1]!).every((tag) => tag === 1 || tag === 2)).toBe(true); // host-user / host-kernel
    expect(exitTags(cleared.traces[1]!).every((tag) => tag === 0)).toBe(true); // init
    expect(restored.violations.concat(cleared.violations)).toEqual([]);
  });

  test.prop([fc.array(fc.nat(), { minLength: 1, maxLength: 10 }), fc.boolean()], { numRuns: 40 })(
    "no design-independent violation for any event sequence in a plain host (confidential, integrity, leak, coherence)",
    (picks, apx) => {
      const m = machine({ apx });
      let s = m.initialState();
      for (const p of picks) {
        const evs = m.events(s);
        const r = m.apply(s, evs[p % evs.length]!);
        expect(r.violations).toEqual([]);
        s = r.state;
      }
    },
  );
});

describe("scenarios/tdx-xfam-noapx-nmi-mapxf.yaml produces its documented outcome", () => {
  test("apxf-c-needs-apx at tdx:copy-args, tdx:handle-nmi, tdx:load-host-xsave — nothing else; clean when XFAM has APX", () => {
    const file = fileURLToPath(new URL("../../../scenarios/tdx-xfam-noapx-nmi-mapxf.yaml", import.meta.url));
    const sc = parseScenario(readFileSync(file, "utf8"), file, { backend: (n) => (n === "tdx" ? tdxBackend : undefined) });
    const r = runScenario(sc);
    expect(r.expectationFailures).toEqual([]);
    expect([...new Set(r.violations.map((v) => `${v.invariant}@${v.site}`))].sort()).toEqual([
      "apxf-c-needs-apx@tdx:copy-args", "apxf-c-needs-apx@tdx:handle-nmi", "apxf-c-needs-apx@tdx:load-host-xsave",
    ]);
    const nmiEvent = r.events.find((e) => e.event.kind === "guest-cpuid")!;
    expect(nmiEvent.steps.find((s) => s.site === "tdx:handle-nmi")!.description).toMatch(/host NMI handler runs/);
    const withApx = runScenario({ ...sc, guest: { apx: true }, expect: { violations: { exactly: [] }, at: {} } });
    expect(withApx.violations).toEqual([]);
  });
});

describe("designs on a TD (Design.protectedGuests)", () => {
  const cXfeatures = BUILTIN_DESIGNS.find((d) => d.name === "c-xfeatures")!;
  const onTd = (design: Design) => {
    const m = createMachine({ backend: tdxBackend, design, host: { cpu: "dmr", kernelApx: false }, guest: { apx: true } });
    return run(m, [{ kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-cpuid" }]).violations.map((v) => v.invariant);
  };
  test("by default a design's EGPR moves do not run for a TD: KVM keeps protected vCPUs on their own path", () => {
    expect(onTd(cXfeatures)).not.toContain("confidential");
  });
  test("protectedGuests: apply runs them, and the confidential invariant catches KVM touching the TD's registers", () => {
    expect(onTd({ ...cXfeatures, protectedGuests: "apply" })).toContain("confidential");
  });
});
