import { describe, expect, test } from "vitest";
import {
  applyEvents,
  FastpathResult, RunCtx, createMachine, kvmRun, ripRead,
  type KvmxEvent, type Machine, type MachineState, type VendorOps,
} from "@kvmx/core";
import { svmApxBackend, svmBackend, svmRunSites, vmcbSave } from "../src/index.js";

function run(m: Machine, events: readonly KvmxEvent[], s: MachineState = m.initialState()) {
  const r = applyEvents(m, events, s);
  return { s: r.state, traces: r.traces, violations: r.violations };
}
const machine = (backend: VendorOps = svmBackend, o: { cpu?: string; kernelApx?: boolean; apx?: boolean; design?: string; pre?: boolean } = {}) =>
  createMachine({
    backend, design: o.design ?? "asm-conditional", host: { cpu: o.cpu ?? "zen", kernelApx: o.kernelApx ?? false },
    guest: { apx: o.apx ?? false }, pre: o.pre ?? false,
  });

describe("svm_vcpu_run / __svm_vcpu_run as sites (docs/facts.md#svm-run)", () => {
  test("order: pre-run, asm GPR load, anchor, VMRUN, guest, #VMEXIT, anchor, GPR store, post-run, STGI, PDPTR clear; GIF=0 sites are not NMI-open", () => {
    const sites = svmRunSites();
    expect(sites.map((s) => s.id)).toEqual([
      "svm:pre-run", "svm:asm-load-gprs", "svm:asm-before-vmrun", "svm:vmrun", "guest", "svm:vmexit",
      "svm:asm-after-vmexit", "svm:asm-store-gprs", "svm:post-run", "svm:stgi", "svm:clear-avail",
    ]);
    const open = sites.filter((s) => s.nmiOpen).map((s) => s.id);
    expect(open).toEqual(["svm:pre-run", "guest", "svm:stgi", "svm:clear-avail"]);
    expect(sites.filter((s) => s.anchor).map((s) => s.anchor)).toEqual(["asm-before-vmenter", "asm-after-vmexit"]);
  });

  test("RAX/RSP/RIP go through the VMCB every time, without a dirty check; the guest keeps its GPRs across exits", () => {
    const m = machine();
    const { s, violations } = run(m, [
      { kind: "guest-write", reg: "rax", value: "0x1111" },
      { kind: "guest-write", reg: "rbx", value: "0x2222" },
      { kind: "guest-write", reg: "r15", value: "0x3333" },
      { kind: "guest-read", reg: "rax" },
      { kind: "guest-read", reg: "rbx" },
      { kind: "guest-read", reg: "r15" },
    ]);
    expect(violations).toEqual([]);
    const v = s.vcpus[0]!;
    expect(v.regs.get(3)).toBe(0x2222n); // RBX: stored by the asm
    expect(v.regs.get(15)).toBe(0x3333n);
    // The VMCB holds what VMRUN/#VMEXIT exchanged; regs[RAX] was copied back from it.
    expect(v.regs.get(0)).toBe(vmcbSave(v, "rax"));
  });

  test("a non-dirty regs[RAX] change still reaches the guest (no dirty check before VMRUN)", () => {
    const m = machine();
    const s0 = m.initialState();
    const ctx = new RunCtx(m.config, s0, undefined);
    ctx.vcpu.regs.set(0, 0x4242n, ctx.guestTag); // what a per-GPR accessor (kvm_rax_write) does: no dirty bit
    ctx.st.expected.set(0, 0x4242n);
    expect(ctx.vcpu.regsDirty & 1n).toBe(1n); // all dirty at creation; clear to prove the point
    ctx.vcpu.regsDirty = 0n;
    ctx.program = [{ insn: { op: "out-imm8-al", port: 0x80 } }];
    kvmRun(ctx);
    expect(ctx.violations).toEqual([]);
    expect(vmcbSave(ctx.vcpu, "rax")).toBe(0x4242n);
  });

  test("after #VMEXIT: dirty = 0 at post-run, only PDPTR leaves regs_avail", () => {
    const m = machine();
    const { traces } = run(m, [{ kind: "guest-io" }, { kind: "guest-io" }]);
    // A fresh vCPU has every bit available and dirty (kvm_arch_vcpu_create).
    const first = traces[0]!;
    expect(first.find((x) => x.site === "svm:clear-avail")!.availCleared).toEqual(["VCPU_REG_PDPTR"]);
    expect(first.filter((x) => x.availCleared).flatMap((x) => x.availCleared)).toEqual(["VCPU_REG_PDPTR"]);
    // KVM's skip of the previous OUT made RIP dirty; post-run clears it after VMRUN used the VMCB copy.
    const post = traces[1]!.find((x) => x.site === "svm:post-run")!;
    expect(post.dirtyCleared).toEqual(["VCPU_REG_RIP"]);
  });

  test("svm_cache_reg: PDPTR loads quietly, anything else is a WARN (never an exception)", () => {
    const m = machine();
    const ctx = new RunCtx(m.config, m.initialState(), undefined);
    const l = ctx.vcpu.layout;
    svmBackend.cacheReg(ctx, l.PDPTR);
    expect(ctx.st.warnings).toBe(0);
    ctx.vcpu.regsAvail &= ~(1n << BigInt(l.RIP));
    ripRead(ctx);
    expect(ctx.st.warnings).toBe(1);
  });

  test("XSETBV is intercepted and emulated: 0x7 accepted; APX (masked on SVM) gets #GP and XCR0 is unchanged", () => {
    const m = machine();
    const a = run(m, [{ kind: "guest-xsetbv", value: "0x7" }]);
    expect(a.s.vcpus[0]!.xcr0).toBe(0x7n);
    const b = run(m, [{ kind: "guest-xsetbv", value: "0x80007" }], a.s);
    expect(b.s.vcpus[0]!.xcr0).toBe(0x7n);
    expect(b.traces[0]!.find((t) => t.site === "x86:handle-exit")!.description).toMatch(/#GP/);
    expect(a.violations.concat(b.violations)).toEqual([]);
  });

  test("fastpath: WRMSR to the TSC deadline re-enters the guest; HLT ends in EXIT_HANDLED and returns to userspace", () => {
    const m = machine();
    const ctx = new RunCtx(m.config, m.initialState(), []);
    ctx.program = [
      { insn: { op: "mov-r64-imm64", dst: 1, imm: 0x6e0n }, onDone: (c) => c.st.expected.set(1, 0x6e0n) },
      { insn: { op: "mov-r64-imm64", dst: 0, imm: 0x1234n }, onDone: (c) => c.st.expected.set(0, 0x1234n) },
      { insn: { op: "mov-r64-imm64", dst: 2, imm: 0n }, onDone: (c) => c.st.expected.set(2, 0n) },
      { insn: { op: "wrmsr" } },
      { insn: { op: "hlt" } },
    ];
    kvmRun(ctx);
    expect(ctx.violations).toEqual([]);
    expect(ctx.vcpu.msrs.get(0x6e0)).toBe(0x1234n);
    const fp = ctx.trace!.filter((t) => t.site === "x86:fastpath").map((t) => t.description);
    expect(fp[0]).toMatch(/REENTER_GUEST/);
    expect(fp[1]).toMatch(/EXIT_HANDLED/);
    expect(ctx.disposition).toBe("userspace");
    expect(ctx.fastpathResult).toBe(FastpathResult.EXIT_HANDLED);
  });

  test("NMI at STGI runs the host handler with the guest XCR0 still live: a -mapxf host breaks there (hypothetical APX on SVM)", () => {
    const bad = run(machine(svmApxBackend, { cpu: "dmr", kernelApx: true, apx: false }), [{ kind: "nmi", site: "guest" }, { kind: "guest-io" }]);
    const sites = bad.violations.filter((v) => v.invariant === "apxf-c-needs-apx").map((v) => v.site);
    expect(sites).toContain("svm:stgi");
    expect(bad.traces[1]!.find((t) => t.site === "svm:stgi")!.description).toMatch(/host NMI handler runs at svm:stgi/);
    const fine = run(machine(svmBackend, { cpu: "zen", kernelApx: false }), [{ kind: "nmi", site: "guest" }, { kind: "guest-io" }]);
    expect(fine.violations).toEqual([]);
  });

  test("designs compared on SVM's sequence (hypothetical APX): asm-conditional is clean, asm-unconditional #UDs with an APX-off guest", () => {
    const events: KvmxEvent[] = [{ kind: "guest-write", reg: "rbx", value: "0x1" }, { kind: "guest-read", reg: "rbx" }];
    const cond = run(machine(svmApxBackend, { cpu: "dmr", apx: true, design: "asm-conditional" }), events);
    expect(cond.violations).toEqual([]);
    const uncond = run(machine(svmApxBackend, { cpu: "dmr", apx: true, design: "asm-unconditional" }), events);
    expect(uncond.violations.map((v) => `${v.invariant}@${v.site}`)).toContain("no-host-ud@svm:asm-after-vmexit");
  });

  test("an SVM guest with APX on (hypothetical) keeps R16–R31 under asm-conditional across exits, NMIs and XCR0 toggles", () => {
    const { violations } = run(machine(svmApxBackend, { cpu: "dmr", apx: true }), [
      { kind: "guest-xsetbv", value: "0x800e7" },
      { kind: "guest-write", reg: "r16", value: "0x1616" },
      { kind: "nmi", site: "svm:stgi" },
      { kind: "guest-read", reg: "r16" },
      { kind: "guest-xsetbv", value: "0xe7" },
      { kind: "guest-xsetbv", value: "0x800e7" },
      { kind: "guest-read", reg: "r16" },
      { kind: "get-xsave" },
    ]);
    expect(violations).toEqual([]);
  });

  test("PRE and POST code generations run the same SVM sequence without violations", () => {
    for (const pre of [false, true]) {
      const { violations } = run(machine(svmBackend, { pre }), [{ kind: "guest-cpuid" }, { kind: "guest-hlt" }, { kind: "get-regs" }]);
      expect(violations).toEqual([]);
    }
  });
});
