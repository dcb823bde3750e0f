import { describe, expect, it } from "vitest";
import { createMachine, cpuProfile, zeroCost, type ApplyResult, type Explorable, type KvmxEvent, type MachineState } from "@kvmx/core";
import { vmxBackend } from "@kvmx/vmx";
import { explore } from "../src/engine/explore.js";
import { replay } from "../src/engine/replay.js";
import { machineProvider } from "../src/machine/machine-provider.js";
import { runCell } from "../src/matrix/run-cell.js";
import type { CellSpec } from "../src/matrix/cell.js";

const MAPXF = { cpuApx: true, kernelApx: true };
const cell = (design: string, guestApx: boolean): CellSpec => ({ design, backend: "vmx", host: MAPXF, guest: { apx: guestApx } });

/** A small alphabet, so both searches reach their fixpoint in a test's time. */
const ALPHABET = { egprs: ["r16"], values: ["0x1111111111111111"], exclude: ["migrate", "set-regs", "get-regs", "guest-wrmsrns-imm", "guest-rdmsr-imm", "guest-io"] } as const;

/** Explores `model` to the fixpoint and returns the verdict and the fingerprints of every state it stored. */
function statesOf(model: Explorable<MachineState, KvmxEvent>, start: MachineState, keep: (s: MachineState) => boolean) {
  const seen = new Set<string>();
  const probe: Explorable<MachineState, KvmxEvent> = Object.create(model) as Explorable<MachineState, KvmxEvent>;
  probe.fingerprint = (s, out) => {
    const h = model.fingerprint!(s, out);
    if (keep(s)) seen.add(`${h.hi}:${h.lo}`);
    return h;
  };
  const r = explore(probe, start, { collect: "per-invariant" });
  return { r, seen };
}

describe("host NMIs folded into the events that run the vCPU (-mapxf hosts)", () => {
  const machine = (folded: boolean, design: string) =>
    createMachine({
      backend: vmxBackend,
      design,
      host: { cpu: cpuProfile("dmr"), kernelApx: true },
      guest: { apx: true },
      alphabet: { ...ALPHABET, ...(folded ? { hostNmi: "folded" as const } : {}) },
    });

  it("reaches exactly the states without a host NMI armed, with the same verdict", () => {
    const explicit = machine(false, "hw-xcr0-switch");
    const folded = machine(true, "hw-xcr0-switch");
    expect(folded.config.foldHostNmis).toBe(true);
    expect(explicit.config.foldHostNmis).toBe(false);
    // Only the guest-time NMI (a VM-exit) stays an event.
    const nmis = (m: typeof explicit) => m.events(m.initialState()).flatMap((e) => (e.kind === "nmi" ? [e.site] : []));
    expect(nmis(folded)).toEqual(["guest"]);
    expect(nmis(explicit).length).toBeGreaterThan(5);
    const hostArmed = (s: MachineState) => s.armedNmi !== undefined && s.armedNmi !== "guest";
    const a = statesOf(explicit, explicit.initialState(), (s) => !hostArmed(s));
    const b = statesOf(folded, folded.initialState(), () => true);
    expect(a.r.complete && b.r.complete).toBe(true);
    expect(b.r.verdict).toBe(a.r.verdict);
    expect(b.r.counterexamples.map((c) => [c.invariant, c.events.length])).toEqual(a.r.counterexamples.map((c) => [c.invariant, c.events.length]));
    expect([...b.seen].sort()).toEqual([...a.seen].sort());
    expect(b.r.states).toBeLessThan(a.r.states / 3);
  });

  it("folds nothing when NMIs are left out of the alphabet", () => {
    const m = createMachine({
      backend: vmxBackend, design: "early-xcr0-asm", host: { cpu: cpuProfile("dmr"), kernelApx: true }, guest: { apx: false },
      alphabet: { ...ALPHABET, exclude: [...ALPHABET.exclude, "nmi"], hostNmi: "folded" },
    });
    expect(m.config.foldHostNmis).toBe(false);
    const r = explore(m, m.initialState(), { collect: "per-invariant" });
    expect(r.counterexamples.some((c) => c.events.some((e) => e.kind === "nmi"))).toBe(false);
  });

  it("puts the NMI back into a counterexample, which then replays on the model that offers every event", () => {
    const explicit = machine(false, "early-xcr0-asm");
    const folded = machine(true, "early-xcr0-asm");
    const a = explore(explicit, explicit.initialState(), { collect: "per-invariant" , maxStates: 20000 });
    const b = explore(folded, folded.initialState(), { collect: "per-invariant", maxStates: 20000 });
    const nmiCe = (r: typeof a) => r.counterexamples.find((c) => c.events.some((e) => e.kind === "nmi" && (e as { site?: string }).site !== "guest"));
    const ce = nmiCe(b);
    expect(ce, "early-xcr0-asm takes an NMI with the guest's XCR0 live in its entry asm").toBeDefined();
    expect(ce!.invariant).toBe("apxf-c-needs-apx");
    expect(ce!.events.map((e) => e.kind)).toEqual(nmiCe(a)!.events.map((e) => e.kind));
    const run = replay(explicit, explicit.initialState(), ce!.events, { invariant: ce!.invariant });
    expect(run.disabledAt).toBeUndefined();
    expect(run.firstViolation?.eventIndex).toBe(ce!.events.length - 1);
    expect(run.firstViolation?.violation.message).toBe(ce!.violation.message);
  });

  it("gives the matrix the same cell results either way", () => {
    const on = machineProvider({ backends: [vmxBackend], sweep: "default", alphabet: ALPHABET });
    const off = machineProvider({ backends: [vmxBackend], sweep: "default", alphabet: ALPHABET, foldHostNmis: false });
    for (const c of [cell("early-xcr0-asm", false), cell("hw-xcr0-switch", true), cell("upstream-v4", true)]) {
      const x = runCell(on, c, { cost: false, collect: "per-invariant" });
      const y = runCell(off, c, { cost: false, collect: "per-invariant" });
      const view = (r: typeof x) => ({
        verdict: r.verdict, complete: r.complete, diameter: r.diameter,
        ces: [r.counterexample, ...(r.otherCounterexamples ?? [])].filter((ce) => ce !== undefined).map((ce) => ce.events),
      });
      expect(view(x), c.design).toEqual(view(y));
      expect(x.states).toBeLessThan(y.states);
    }
  });
});

/** The engine's side: a folded violation is reported one event later, with its folded event in the path. */
describe("explore with folded violations", () => {
  type S = { n: number };
  type E = { op: "step" } | { op: "look" } | { op: "poke" };
  /**
   * `step` counts to 3; at n = 1 a `poke` (never offered) before `step` would break no-leak, and
   * `look` breaks uapi-truth; `step` at n = 2 breaks guest-integrity.
   */
  const model: Explorable<S, E> = {
    events: () => [{ op: "step" }, { op: "look" }],
    key: (s) => String(s.n),
    apply(s, e): ApplyResult<S, E> {
      const r: ApplyResult<S, E> = { state: { n: e.op === "step" ? Math.min(s.n + 1, 3) : s.n }, violations: [], cost: zeroCost() };
      if (e.op === "step" && s.n === 1) r.folded = [{ before: { op: "poke" }, violations: [{ invariant: "no-leak", message: "poked", step: 0 }] }];
      if (e.op === "look" && s.n === 1) r.violations.push({ invariant: "uapi-truth", message: "looked", step: 0 });
      if (e.op === "step" && s.n === 2) r.violations.push({ invariant: "guest-integrity", message: "late", step: 0 });
      return r;
    },
  };

  it("keeps the folded event in the path and keeps expanding the state", () => {
    const r = explore(model, { n: 0 }, { collect: "per-invariant" });
    expect(r.counterexamples.map((c) => [c.invariant, c.events.map((e) => e.op)])).toEqual([
      ["uapi-truth", ["step", "look"]],
      ["no-leak", ["step", "poke", "step"]],
      ["guest-integrity", ["step", "step", "step"]],
    ]);
    expect(r.complete).toBe(true);
  });

  it("reports a folded violation no earlier than the violations of its length (shortest first)", () => {
    // The folded violation is met first (step comes before look at n = 1) but is three events long.
    const r = explore(model, { n: 0 }, { collect: "first" });
    expect(r.counterexamples.map((c) => c.invariant)).toEqual(["uapi-truth"]);
  });

  it("leaves out folded violations past the depth bound", () => {
    const r = explore(model, { n: 0 }, { collect: "per-invariant", depth: 2 });
    expect(r.counterexamples.map((c) => c.invariant)).toEqual(["uapi-truth"]);
  });
});
