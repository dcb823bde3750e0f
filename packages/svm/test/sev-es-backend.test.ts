import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect } from "vitest";
import { fc, test } from "@fast-check/vitest";
import {
  applyEvents,
  RunCtx, createMachine, guestProgram, kvmRun, parseScenario, runScenario,
  type KvmxEvent, type Machine, type MachineState, type TraceStep, type VendorOps,
} from "@kvmx/core";
import { sevEsBackend, svmBackend, svmRunSites, vmsa, vmsaGpr } from "../src/index.js";

function run(m: Machine, events: readonly KvmxEvent[], s: MachineState = m.initialState()) {
  const r = applyEvents(m, events, s);
  return { s: r.state, traces: r.traces, violations: r.violations };
}
const machine = (backend: VendorOps = sevEsBackend, o: { cpu?: string; kernelApx?: boolean } = {}) =>
  createMachine({ backend, design: "asm-conditional", host: { cpu: o.cpu ?? "zen", kernelApx: o.kernelApx ?? false }, guest: { apx: false } });
const noteOf = (t: TraceStep[], site: string): string => t.find((x) => x.site === site)?.description ?? "";

describe("SEV-ES: VMSA, hardware-swapped XCR0/XSS/PKRU, GHCB exchange (docs/facts.md#sev-es)", () => {
  test("the guest's GPRs live in the VMSA: they survive exits although KVM's regs[] never holds them", () => {
    const m = machine();
    const { s, violations } = run(m, [
      { kind: "guest-write", reg: "rbx", value: "0x1234" },
      { kind: "guest-write", reg: "r12", value: "0x5678" },
      { kind: "guest-read", reg: "rbx" },
      { kind: "guest-read", reg: "r12" },
    ]);
    expect(violations).toEqual([]);
    const v = s.vcpus[0]!;
    expect(vmsaGpr(v, 3).value).toBe(0x1234n);
    expect(vmsaGpr(v, 12).value).toBe(0x5678n);
    expect(v.regs.get(3)).toBe(0n);
    expect(v.regs.get(12)).toBe(0n);
  });

  test("VMGEXIT: regs[] zeroed, then only the GHCB's valid fields (CPUID: RAX, RCX); results go back through the GHCB", () => {
    const m = machine();
    const a = run(m, [{ kind: "guest-write", reg: "rdi", value: "0x77" }]);
    const st = a.s.copy();
    const ctx = new RunCtx(m.config, st, []);
    ctx.vcpu.regs.set(7, 0xdeadn); // a stale scratch value: sync_from_ghcb must clear it
    ctx.program = guestProgram(m.config, st, { kind: "guest-cpuid" });
    kvmRun(ctx);
    expect(ctx.violations).toEqual([]);
    const v = ctx.vcpu;
    expect(v.regs.get(7)).toBe(0n);
    // kvm_emulate_cpuid wrote the leaf-0 results ("AuthenticAMD" in EBX/EDX/ECX); RSI was not valid: 0.
    expect(v.regs.get(3)).toBe(0x68747541n);
    expect(v.regs.get(6)).toBe(0n);
    expect(noteOf(ctx.trace!, "sev-es:vmexit")).toMatch(/GHCB ← rax, rcx, XCR0; VMGEXIT/);
    expect(noteOf(ctx.trace!, "x86:handle-exit")).toMatch(/regs\[\] zeroed, rax, rcx from the GHCB/);
    expect(vmsaGpr(v, 7).value).toBe(0x77n);
    // Next entry: RAX..RDX go back to the GHCB and the guest's #VC handler takes them — the guest reads the results.
    const t: TraceStep[] = [];
    const next = m.apply(ctx.st, { kind: "guest-read", reg: "rbx" }, t);
    expect(next.violations).toEqual([]);
    expect(noteOf(t, "sev-es:pre-run")).toMatch(/sev_es_sync_to_ghcb: RAX, RBX, RCX, RDX → GHCB/);
    expect(noteOf(t, "guest")).toMatch(/rax, rbx, rcx, rdx ← GHCB.*guest read rbx = 0x68747541 as expected/);
  });

  test("guest XSETBV is not intercepted: KVM's XCR0 stays stale until the GHCB carries the guest's (via __kvm_set_xcr)", () => {
    const m = machine();
    const a = run(m, [{ kind: "guest-xsetbv", value: "0x7" }]);
    expect(a.s.vcpus[0]!.xcr0).toBe(0x1n);
    expect(vmsa(a.s.vcpus[0]!, "xcr0")).toBe(0x7n);
    const b = run(m, [{ kind: "guest-cpuid" }], a.s);
    expect(b.s.vcpus[0]!.xcr0).toBe(0x7n);
    expect(noteOf(b.traces[0]!, "x86:handle-exit")).toMatch(/XCR0 ← GHCB 0x7 via __kvm_set_xcr/);
    expect(a.violations.concat(b.violations)).toEqual([]);
  });

  test("hardware swaps XCR0: guest's from the VMSA at VMRUN, host's at #VMEXIT; KVM issues no XSETBV at all", () => {
    const m = machine(sevEsBackend, { cpu: "dmr" });
    const { traces, violations } = run(m, [{ kind: "guest-xsetbv", value: "0x7" }, { kind: "guest-cpuid" }, { kind: "guest-io" }]);
    expect(violations).toEqual([]);
    const last = traces[2]!;
    expect(last.find((x) => x.site === "sev-es:vmrun")!.xcr0).toBe(0x7n);
    expect(last.find((x) => x.site === "sev-es:vmexit")!.xcr0).toBe(m.config.hostXcr0);
    expect(noteOf(last, "x86:load-guest-xfeatures")).toMatch(/skipped: XCR0 is switched by hardware/);
    for (const t of traces) for (const step of t) if (step.kind === "c" || step.kind === "asm") expect(step.xcr0).toBe(m.config.hostXcr0);
    const r = m.apply(run(m, [{ kind: "guest-xsetbv", value: "0x7" }]).s, { kind: "guest-io" });
    expect(r.cost.xsetbv).toBe(0);
  });

  test("state ioctls on the protected vCPU fail with EINVAL", () => {
    const m = machine();
    const { traces, violations } = run(m, [
      { kind: "get-regs" }, { kind: "set-regs", regs: { rax: "0x1" } }, { kind: "get-xsave" }, { kind: "set-xcrs", xcr0: "0x7" },
    ]);
    expect(violations).toEqual([]);
    for (const t of traces) expect(t[0]!.description).toMatch(/EINVAL: protected guest state/);
  });

  test("a -mapxf host takes the NMI at STGI safely: #VMEXIT already restored host XCR0 (plain SVM does not)", () => {
    const ev: KvmxEvent[] = [{ kind: "nmi", site: "guest" }, { kind: "guest-io" }, { kind: "nmi", site: "svm:stgi" }, { kind: "guest-cpuid" }];
    expect(run(machine(sevEsBackend, { cpu: "dmr", kernelApx: true }), ev).violations).toEqual([]);
  });

  test.prop([fc.array(fc.nat(), { minLength: 1, maxLength: 12 })], { numRuns: 60 })(
    "confidential holds by the model's behaviour: any event sequence leaves no confidential, leak or integrity violation",
    (picks) => {
      const m = machine(sevEsBackend, { cpu: "dmr", kernelApx: true });
      let s = m.initialState();
      for (const p of picks) {
        const evs = m.events(s);
        const r = m.apply(s, evs[p % evs.length]!);
        expect(r.violations).toEqual([]);
        s = r.state;
      }
    },
  );

  test("a deliberately broken SEV-ES (KVM runs the plain SVM GPR load/store) violates confidential", () => {
    const broken: VendorOps = { ...sevEsBackend, name: "sev-es-broken", runSites: () => svmRunSites() };
    const { violations } = run(machine(broken), [{ kind: "guest-io" }]);
    const conf = violations.filter((v) => v.invariant === "confidential").map((v) => v.site);
    expect(conf).toEqual(expect.arrayContaining(["svm:asm-load-gprs", "svm:asm-store-gprs"]));
  });

  test("cache_reg for anything but PDPTR is a WARN: RIP/RSP of an SEV-ES guest are in the encrypted VMSA", () => {
    const m = machine();
    const ctx = new RunCtx(m.config, m.initialState(), undefined);
    sevEsBackend.cacheReg(ctx, ctx.vcpu.layout.RIP);
    expect(ctx.st.warnings).toBe(1);
    sevEsBackend.cacheReg(ctx, ctx.vcpu.layout.PDPTR);
    expect(ctx.st.warnings).toBe(1);
  });
});

describe("scenarios/sev-es-xcr0-via-ghcb.yaml produces its documented outcome", () => {
  test("no violation; KVM's XCR0 for the vCPU becomes 0x7 at the CPUID VMGEXIT, not at the XSETBV", () => {
    const file = fileURLToPath(new URL("../../../scenarios/sev-es-xcr0-via-ghcb.yaml", import.meta.url));
    const sc = parseScenario(readFileSync(file, "utf8"), file, { backend: (n) => (n === "sev-es" ? sevEsBackend : undefined) });
    const r = runScenario(sc);
    expect(r.expectationFailures).toEqual([]);
    expect(r.violations).toEqual([]);
    const ev = (d: string) => r.events.find((e) => e.description === d)!;
    expect(ev("guest-xsetbv value=0x7").steps.some((s) => /__kvm_set_xcr/.test(s.description))).toBe(false);
    expect(ev("guest-cpuid").steps.find((s) => s.site === "x86:handle-exit")!.description).toMatch(/XCR0 ← GHCB 0x7/);
  });
});
