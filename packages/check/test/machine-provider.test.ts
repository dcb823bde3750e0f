import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ANCHOR_NAMES, BUILTIN_DESIGNS, builtinDesign, createMachine, cpuProfile, parseScenario, runScenario, type Design, type KvmxEvent } from "@kvmx/core";
import { vmxBackend } from "@kvmx/vmx";
import { sevEsBackend, svmBackend } from "@kvmx/svm";
import { runMatrix } from "../src/matrix/run-matrix.js";
import { machineProvider } from "../src/machine/machine-provider.js";
import { runCell } from "../src/matrix/run-cell.js";
import { replay } from "../src/engine/replay.js";
import type { CellSpec } from "../src/matrix/cell.js";

const H_APX = { cpuApx: true, kernelApx: false };
const cell = (design: string, backend: string, host = H_APX, guestApx = false): CellSpec => ({ design, backend, host, guest: { apx: guestApx } });

/** early-xcr0 with its EGPR load moved after the real guest XCR0 load — the ordering Sean warned about. */
function mutated(): Design {
  const base = builtinDesign("early-xcr0")!;
  const actions = base.actions.map((a) => (a.op === "load-egprs" ? { ...a, anchor: "post-guest-xfeatures" as const } : a));
  return { ...base, name: "early-xcr0-load-moved", actions };
}

describe("machineProvider over the real Machine", () => {
  const provider = machineProvider({ backends: [vmxBackend, svmBackend], designs: [builtinDesign("early-xcr0")!, builtinDesign("asm-unconditional")!, builtinDesign("asm-conditional")!, mutated()] });

  it("finds Andrew Cooper's #UD: asm-unconditional with an APX-off guest on an APX host", () => {
    const r = runCell(provider, cell("asm-unconditional", "vmx"), { depth: 2 });
    expect(r.verdict).toBe("violation");
    expect(r.invariant).toBe("no-host-ud");
    expect(r.counterexample!.events).toHaveLength(1);
  });

  it("a verdict follows from exploration: moving one action to another anchor flips it", () => {
    const safe = runCell(provider, cell("early-xcr0", "vmx"), { depth: 1 });
    const broken = runCell(provider, cell("early-xcr0-load-moved", "vmx"), { depth: 1 });
    expect(safe.verdict).toBe("safe");
    expect(broken.verdict).toBe("violation");
    expect(broken.invariant).toBe("no-host-ud");
  });

  it("every counterexample replays on a fresh Machine to the same violation at its last event", () => {
    const r = runCell(provider, cell("early-xcr0-load-moved", "vmx"), { depth: 1 });
    const m = createMachine({ backend: vmxBackend, design: mutated(), host: { cpu: cpuProfile("dmr"), kernelApx: false }, guest: { apx: false } });
    const run = replay(m, m.initialState(), r.counterexample!.events as KvmxEvent[]);
    expect(run.firstViolation?.eventIndex).toBe(r.counterexample!.failingStep);
    expect(run.firstViolation?.violation.invariant).toBe(r.invariant);
    // The trace carries the world switch: the live XCR0 and R16–R31 owners at every step.
    const steps = r.counterexample!.trace.flatMap((t) => t.steps);
    expect(steps.some((s) => s.kind === "asm" || s.kind === "c")).toBe(true);
    expect(steps.every((s) => s.egprTags.length === 16)).toBe(true);
  });

  it("derives n/a from the backend and host: SVM masks APX, a host without APX has none to give", () => {
    const svm = provider.notApplicable(cell("asm-conditional", "svm", H_APX, true));
    expect(svm).toMatch(/svm leaves APX out of KVM's supported XCR0/);
    const noApx = provider.notApplicable(cell("asm-conditional", "vmx", { cpuApx: false, kernelApx: false }, true));
    expect(noApx).toMatch(/does not enumerate APX/);
    expect(provider.notApplicable(cell("asm-conditional", "vmx", H_APX, true))).toBeUndefined();
  });

  it("prices round trips from the Machine's counters: asm-conditional moves 16 EGPRs each way with a guest using APX", () => {
    const r = runCell(provider, cell("asm-conditional", "vmx", H_APX, true), { depth: 0 });
    const full = r.cost!.perTrip["full-exit"]!;
    expect(full.egprLoads).toBe(16);
    expect(full.egprStores).toBe(16);
    expect(full.xsetbv).toBe(0);
    const off = runCell(provider, cell("asm-conditional", "vmx", H_APX, false), { depth: 0 });
    expect(off.cost!.perTrip["full-exit"]!.egprLoads).toBe(0);
  });
});

describe("counterexample scenario files", () => {
  it("parse with core's scenario reader and replay to the same violation", () => {
    const provider = machineProvider({ backends: [vmxBackend, svmBackend] });
    const r = runCell(provider, cell("asm-unconditional", "vmx"), { depth: 2 });
    const text = r.counterexample!.scenario;
    const s = parseScenario(text, "ce.yaml", { backend: (n) => [vmxBackend, svmBackend].find((b) => b.name === n) });
    const run = runScenario(s);
    expect(run.ok).toBe(true);
    expect(run.violations.map((v) => v.invariant)).toContain(r.invariant);
    expect(run.violations.every((v) => v.event === r.counterexample!.failingStep)).toBe(true);
  });

  it("inline a design that is not built in", () => {
    const provider = machineProvider({ backends: [vmxBackend], designs: [mutated()] });
    const r = runCell(provider, cell("early-xcr0-load-moved", "vmx"), { depth: 1 });
    expect(r.counterexample!.scenario).toContain("early-xcr0-load-moved");
    const s = parseScenario(r.counterexample!.scenario, "ce.yaml", { backend: () => vmxBackend });
    expect(s.design.actions).toEqual(mutated().actions);
    expect(runScenario(s).ok).toBe(true);
  });
});

describe("the built-in designs on vmx and sev-es, depth 2", () => {
  it("every counterexample's scenario replays on a fresh Machine to exactly its expected violations, at its failing event", async () => {
    const backends = [vmxBackend, sevEsBackend];
    const r = await runMatrix(machineProvider({ backends }), { depth: 2, cost: false });
    const ces = r.cells.filter((c) => c.counterexample);
    expect(ces.length).toBeGreaterThan(10);
    for (const c of ces) {
      const ce = c.counterexample!;
      const run = runScenario(parseScenario(ce.scenario, `${c.design}.yaml`, { backend: (n) => backends.find((b) => b.name === n) }));
      expect(run.ok, `${c.design} on ${c.backend}: ${run.expectationFailures.join("; ")}`).toBe(true);
      expect(Math.min(...run.violations.map((v) => v.event))).toBe(ce.failingStep);
    }
    // And safe cells really are safe: no verdict is given without exploring (states counted).
    for (const c of r.cells.filter((x) => x.verdict === "safe")) expect(c.states).toBeGreaterThan(1);
  });
});

describe("law: verdicts come from exploration, for any design", () => {
  it("a random design mutation (one action moved to another anchor) gets verdict = brute force at depth 1, and its counterexample replays", () => {
    const designs = BUILTIN_DESIGNS.filter((d) => d.actions.length > 0);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: designs.length - 1 }),
        fc.nat(),
        fc.constantFrom(...ANCHOR_NAMES),
        fc.boolean(),
        (di, ai, anchor, guestApx) => {
          const base = designs[di]!;
          const k = ai % base.actions.length;
          const design: Design = { ...base, name: `${base.name}-mutant`, actions: base.actions.map((a, i) => (i === k ? { ...a, anchor } : a)) };
          const provider = machineProvider({ backends: [vmxBackend], designs: [design] });
          const c = cell(design.name, "vmx", H_APX, guestApx);
          const r = runCell(provider, c, { depth: 1, cost: false });
          const m = createMachine({ backend: vmxBackend, design, host: { cpu: cpuProfile("dmr"), kernelApx: false }, guest: { apx: guestApx } });
          const start = m.initialState();
          const brute = m.events(start).some((e) => m.apply(start, e).violations.length > 0);
          expect(r.verdict).toBe(brute ? "violation" : "safe");
          if (r.counterexample) {
            const run = runScenario(parseScenario(r.counterexample.scenario, "mutant.yaml", { backend: () => vmxBackend }));
            expect(run.ok).toBe(true);
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
