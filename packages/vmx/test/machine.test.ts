import { fc, test as ftest } from "@fast-check/vitest";
import { describe, expect, test } from "vitest";
import { createMachine, type Design, type KvmxEvent, type MachineState, type Machine, type ModelOptions, type TraceStep } from "@kvmx/core";
import { vmxBackend } from "../src/index.js";

const machine = (design: string, kernelApx = false, extra: Partial<Parameters<typeof createMachine>[0]> = {}) =>
  createMachine({ backend: vmxBackend, design, host: { cpu: "dmr", kernelApx }, guest: { apx: true }, ...extra });

function run(m: Machine, events: readonly KvmxEvent[]) {
  let s = m.initialState();
  const violations = [];
  for (const e of events) {
    const r = m.apply(s, e);
    s = r.state;
    violations.push(...r.violations.map((v) => ({ ...v, event: e })));
  }
  return { state: s, violations };
}

/** Random event sequences from a machine's own alphabet, replayed from the initial state. */
const seqArb = (m: Machine, len: number) => fc.array(fc.nat(), { maxLength: len }).map((picks) => {
  let s = m.initialState();
  const out: KvmxEvent[] = [];
  for (const p of picks) {
    const evs = m.events(s);
    const e = evs[p % evs.length]!;
    out.push(e);
    s = m.apply(s, e).state;
  }
  return out;
});

describe("Machine on VMX (Explorable contract)", () => {
  ftest.prop([fc.nat(), fc.nat({ max: 30 })], { numRuns: 40 })("apply never mutates its input state", (seed, steps) => {
    const m = machine("asm-conditional");
    let s: MachineState = m.initialState();
    let x = seed;
    for (let i = 0; i < steps; i++) {
      const evs = m.events(s);
      const e = evs[(x = (x * 1103515245 + 12345) >>> 0) % evs.length]!;
      const before = m.key(s);
      const r = m.apply(s, e);
      expect(m.key(s)).toBe(before);
      s = r.state;
    }
  });

  test("key is canonical: the same history gives the same key, different guest values different keys", () => {
    const m = machine("fpstate");
    const a = run(m, [{ kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x1" }]).state;
    const b = run(m, [{ kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x1" }]).state;
    const c = run(m, [{ kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x2" }]).state;
    expect(m.key(a)).toBe(m.key(b));
    expect(m.key(a)).not.toBe(m.key(c));
    expect(m.key(a).length).toBeLessThan(1200);
  });

  test("the alphabet is bounded and only offers migration once", () => {
    const m = machine("asm-conditional");
    const evs = m.events(m.initialState());
    expect(evs.length).toBeLessThan(80);
    expect(evs.filter((e) => e.kind === "migrate")).toHaveLength(1);
    const after = run(m, [{ kind: "migrate" }]).state;
    expect(m.events(after).filter((e) => e.kind === "migrate")).toHaveLength(0);
  });

  test("a trace records every site with kind, live XCR0 and R16–R31 provenance", () => {
    const m = machine("asm-conditional");
    const s = run(m, [{ kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x1111" }]).state;
    const trace: TraceStep[] = [];
    m.apply(s, { kind: "guest-io" }, trace);
    const byId = new Map(trace.map((t) => [t.site, t]));
    expect(byId.get("vmx:asm-before-vmenter")!.egprTags[0]).toBe(16); // guest(0) after the asm load
    expect(byId.get("vmx:asm-after-vmexit")!.egprTags[0]).toBe(0); // stored, then cleared (init)
    expect(byId.get("guest")!.xcr0).toBe(0xe02e7n);
    expect(byId.get("x86:load-host-xfeatures")!.kind).toBe("c");
    expect(byId.get("user:return")!.egprTags.every((t) => t === 1)).toBe(true); // VMM's own values back
  });
});

// Event kinds a "safe" design must survive in a non--mapxf host. INIT is left out on purpose: regs[]
// designs zero R16–R31 in kvm_vcpu_reset's memset while fpstate keeps them (see the INIT test below).
const SAFE_KINDS = ["guest-xsetbv", "guest-write", "guest-read", "guest-wrmsrns-imm", "guest-rdmsr-imm", "guest-cpuid", "guest-hlt", "guest-io", "nmi", "preempt", "get-xsave", "set-xsave", "get-regs", "set-regs", "set-xcrs", "migrate", "reset"] as const;

describe("designs agree on what the guest sees (non--mapxf host)", () => {
  // KVM_SET_XSAVE without component 19 leaves regs[] alone but puts an fpstate home in its init state
  // (copy_uabi_to_xstate): fpstate agrees with the guest's view under setXsaveApxAbsent=init-zeros,
  // the regs[] designs under the default, leave-unchanged.
  // Migration stays within the EGPR home for the same reason.
  const OPTIONS: Record<string, Partial<ModelOptions>> = { fpstate: { setXsaveApxAbsent: "init-zeros" } };
  for (const design of ["fpstate", "asm-conditional", "hw-xcr0-switch"]) {
    const migrateTo = design === "fpstate" ? ["fpstate"] : ["asm-conditional"];
    const m = machine(design, false, { alphabet: { include: [...SAFE_KINDS], migrateTo }, options: OPTIONS[design] ?? {} });
    ftest.prop([seqArb(m, 12)], { numRuns: 60 })(`${design}: no violation on random sequences`, (events) => {
      const { violations } = run(m, events);
      expect(violations.map((v) => `${v.invariant}@${v.site}: ${v.message}`)).toEqual([]);
    });
  }
});

describe("designs the discussion rejected fail for the reason given", () => {
  test("c-xfeatures: the WRMSRNS-imm fastpath reads a stale regs[16] (Chang)", () => {
    const { violations } = run(machine("c-xfeatures"), [
      { kind: "guest-xsetbv", value: "0xe02e7" },
      { kind: "guest-wrmsrns-imm", reg: "r16", value: "0x1111" },
    ]);
    expect(violations[0]).toMatchObject({ invariant: "cache-coherence", site: "x86:fastpath" });
  });

  test("asm-unconditional: PUSH2/POP2 #UD while an APX-off guest XCR0 is live (Andrew Cooper)", () => {
    const { violations } = run(machine("asm-unconditional"), [{ kind: "guest-io" }]);
    expect(violations.map((v) => `${v.invariant}@${v.site}`)).toEqual(["no-host-ud@vmx:asm-before-vmenter", "no-host-ud@vmx:asm-after-vmexit"]);
    // With APX enabled in the guest the same design is clean.
    const ok = run(machine("asm-unconditional"), [{ kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x5" }, { kind: "guest-read", reg: "r16" }]);
    // Only the run that executes the XSETBV (its guest XCR0 is still FP) faults; afterwards the design is clean.
    expect(ok.violations.every((v) => v.event.kind === "guest-xsetbv" && v.invariant === "no-host-ud")).toBe(true);
  });

  test("early-xcr0 switches EGPRs next to kvm_load_xfeatures too, so the fastpath still reads regs[] early", () => {
    const { violations } = run(machine("early-xcr0"), [
      { kind: "guest-xsetbv", value: "0xe02e7" },
      { kind: "guest-wrmsrns-imm", reg: "r16", value: "0x2222" },
    ]);
    expect(violations[0]).toMatchObject({ invariant: "cache-coherence", site: "x86:fastpath" });
  });

  test("early-xcr0-misordered: the EGPR load after the real guest XCR0 #UDs (Sean)", () => {
    const { violations } = run(machine("early-xcr0-misordered"), [{ kind: "guest-io" }]);
    expect(violations[0]).toMatchObject({ invariant: "no-host-ud", site: "x86:load-guest-xfeatures" });
  });

  test("-mapxf host: every design but the hardware XCR0 switch runs C with XCR0.APX=0", () => {
    for (const d of ["fpstate", "c-xfeatures", "early-xcr0", "asm-conditional"]) {
      const { violations } = run(machine(d, true), [{ kind: "guest-io" }]);
      expect(violations.some((v) => v.invariant === "apxf-c-needs-apx"), d).toBe(true);
    }
    expect(run(machine("hw-xcr0-switch", true), [{ kind: "guest-io" }, { kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x1" }, { kind: "guest-read", reg: "r16" }]).violations).toEqual([]);
  });

  test("fpstate in a -mapxf host: C code clobbers the guest's live R16–R31 (the objection to position 1)", () => {
    const m = machine("fpstate", true);
    const s = run(m, [{ kind: "set-xcrs", xcr0: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x77" }]);
    const { violations } = run(m, [{ kind: "set-xcrs", xcr0: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x77" }, { kind: "guest-read", reg: "r16" }]);
    void s;
    expect(violations.some((v) => v.invariant === "no-leak" || v.invariant === "guest-integrity")).toBe(true);
  });
});

describe("uncertain facts are options whose alternatives change the outcome", () => {
  const seq: KvmxEvent[] = [
    { kind: "guest-xsetbv", value: "0xe02e7" },
    { kind: "guest-write", reg: "r16", value: "0x1111" },
    { kind: "set-xsave" }, // XSTATE_BV[19] = 0
    { kind: "guest-read", reg: "r16" },
    { kind: "get-xsave" },
  ];
  test("setXsaveApxAbsent: KVM leaves regs[] alone either way; only leave-unchanged agrees with it", () => {
    for (const alt of ["leave-unchanged", "init-zeros"] as const) {
      const m = machine("asm-conditional", false, { options: { setXsaveApxAbsent: alt } });
      let s = m.initialState();
      const broken: string[] = [];
      const reads: unknown[] = [];
      for (const e of seq) {
        const r = m.apply(s, e, e.kind === "guest-read" ? [] : undefined);
        broken.push(...r.violations.map((v) => `${e.kind}:${v.invariant}`));
        reads.push(...(r.observations ?? []).filter((o) => o.kind === "guest-read"));
        s = r.state;
      }
      // The guest reads its value back in both: the series copies component 19 only when present.
      expect(reads).toEqual([{ kind: "guest-read", reg: "r16", value: 0x1111n }]);
      if (alt === "leave-unchanged") expect(broken).toEqual([]);
      // Expecting zeros after the SET, the checker sees KVM's GET disagree, then the guest's read.
      else expect(broken).toEqual(["set-xsave:uapi-truth", "guest-read:guest-integrity", "get-xsave:uapi-truth"]);
    }
  });

  test("egprInitValue=kept: INIT zeroes regs[16..31] (memset) but not the fpstate — the designs disagree", () => {
    const ev: KvmxEvent[] = [
      { kind: "set-xcrs", xcr0: "0xe02e7" },
      { kind: "guest-write", reg: "r16", value: "0x1111" },
      { kind: "init" },
      { kind: "guest-read", reg: "r16" },
    ];
    expect(run(machine("fpstate"), ev).violations).toEqual([]);
    expect(run(machine("asm-conditional"), ev).violations[0]).toMatchObject({ invariant: "guest-integrity" });
    expect(run(machine("asm-conditional", false, { options: { egprInitValue: "zeros" } }), ev).violations).toEqual([]);
  });

  test("xcr0ApxDisable=clear: KVM keeps regs[] across the toggle, so the guest sees stale values", () => {
    const ev: KvmxEvent[] = [
      { kind: "guest-xsetbv", value: "0xe02e7" },
      { kind: "guest-write", reg: "r16", value: "0x1111" },
      { kind: "guest-xsetbv", value: "0x602e7" },
      { kind: "guest-xsetbv", value: "0xe02e7" },
      { kind: "guest-read", reg: "r16" },
    ];
    expect(run(machine("asm-conditional"), ev).violations).toEqual([]);
    expect(run(machine("asm-conditional", false, { options: { xcr0ApxDisable: "clear" } }), ev).violations[0]).toMatchObject({ invariant: "guest-integrity" });
  });
});

describe("apply never throws on its own alphabet", () => {
  for (const cpu of ["spr", "dmr", "zen"]) {
    for (const kernelApx of [false, true]) {
      test(`${cpu}${kernelApx ? " -mapxf" : ""}: every design, random sequences`, () => {
        for (const design of ["fpstate", "c-xfeatures", "early-xcr0", "early-xcr0-misordered", "asm-conditional", "asm-unconditional", "hw-xcr0-switch"]) {
          for (const pre of [false, true]) {
            const m = createMachine({ backend: vmxBackend, design, host: { cpu, kernelApx }, guest: { apx: true }, pre, alphabet: { migrateTo: ["fpstate", "asm-conditional"] } });
            fc.assert(fc.property(seqArb(m, 8), (events) => void run(m, events)), { numRuns: 8 });
          }
        }
      });
    }
  }
});

describe("every monitor can fire (designs written to break one rule each)", () => {
  const custom = (actions: Design["actions"], extra: Partial<Design> = {}): Design => ({ name: "t", description: "t", source: "test", egprHome: "regs", actions, ...extra });
  const on = (d: Design, events: KvmxEvent[], kernelApx = false) =>
    run(createMachine({ backend: vmxBackend, design: d, host: { cpu: "dmr", kernelApx }, guest: { apx: true } }), events).violations.map((v) => v.invariant);

  test("no-leak: storing but never loading leaves the VMM's R16–R31 visible to the guest", () => {
    const d = custom([{ anchor: "asm-after-vmexit", op: "store-egprs", when: "guest-xcr0-apx" }]);
    expect(on(d, [{ kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-io" }])).toContain("no-leak");
  });

  test("host-integrity: a design that replaces the host XCR0 load with nothing loses the VMM's R16–R31", () => {
    // Loads regs[] under host XCR0, and never gives the host its XCR0 back: the VMM's FPU state
    // (XSTATE_BV[19]=1) cannot be XRSTORed under the guest's APX-less XCR0, so R16–R31 keep regs[].
    const d = custom([
      { anchor: "pre-guest-xfeatures", op: "load-egprs" },
      { anchor: "host-xfeatures", op: "store-egprs", when: "guest-xcr0-apx" },
    ]);
    const got = on(d, [{ kind: "set-xcrs", xcr0: "0x602e7" }, { kind: "guest-io" }]);
    expect(got).toContain("host-integrity");
  });

  test("guest-integrity: loading but never storing loses what the guest wrote", () => {
    const d = custom([{ anchor: "asm-before-vmenter", op: "load-egprs", when: "guest-xcr0-apx" }]);
    expect(on(d, [{ kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x5" }, { kind: "guest-read", reg: "r16" }])).toContain("guest-integrity");
  });

  test("uapi-truth: a regs[] design that never stores reports stale component 19", () => {
    const d = custom([{ anchor: "asm-before-vmenter", op: "load-egprs", when: "guest-xcr0-apx" }]);
    expect(on(d, [{ kind: "guest-xsetbv", value: "0xe02e7" }, { kind: "guest-write", reg: "r16", value: "0x5" }, { kind: "get-xsave" }])).toContain("uapi-truth");
  });

  test("confidential: a design action on a protected (hardware-home) vCPU", () => {
    const d = custom([{ anchor: "asm-before-vmenter", op: "load-egprs" }], { egprHome: "hardware" });
    expect(on(d, [{ kind: "guest-io" }])).toContain("confidential");
  });
});
