import {
  AssumptionSpace,
  BUILTIN_DESIGNS,
  ENTER_GUEST_POST,
  ENTER_GUEST_PRE,
  ModelBugError,
  cpuProfile,
  createMachine,
  hostNmisFolded,
  type Design,
  type HostCpu,
  type InvariantName,
  type KvmxEvent,
  type Machine,
  type MachineConfig,
  type MachineState,
  type ModelOptions,
  type VendorOps,
} from "@kvmx/core";
import type { CellSpec } from "../matrix/cell.js";
import type { CheckProvider, CheckSubject, CostProbe } from "../matrix/provider.js";
import { machineScenario } from "./machine-scenario.js";

export interface MachineProviderOptions {
  /** The backends to run on (the CLI wires vmxBackend, svmBackend, ...). */
  backends: readonly VendorOps[];
  /** Designs in matrix order; default the built-ins. Designs loaded from files are appended by the caller. */
  designs?: readonly Design[];
  /**
   * The host CPU of a start: default the core profiles "dmr" (an APX part) and "spr" (no APX, this
   * machine's class) — the backend decides what KVM then supports on it.
   */
  hostCpu?: (cpuApx: boolean, backend: VendorOps) => HostCpu;
  /** Assumptions pinned to one alternative (not swept). */
  options?: Partial<ModelOptions>;
  /**
   * Which assumption valuations every cell is checked under (core's AssumptionSpace): "default" (the
   * defaults only), "each" (the defaults and every single deviation — the default), "all" (the product).
   */
  sweep?: "default" | "each" | "all";
  /** Attribute violations to the design or to code every design of its EGPR home shares (default true). */
  findings?: boolean;
  alphabet?: MachineConfig["alphabet"];
  /**
   * Explore -mapxf cells with host NMIs folded into the events that run the vCPU (default true): the
   * same verdicts from far fewer states (docs/model.md#host-nmi-folding). False explores an `nmi`
   * event per NMI-open host site, as a scenario can.
   */
  foldHostNmis?: boolean;
}

const APX_BIT = 1n << 19n;

/**
 * The CheckProvider over core's Machine: one Machine per cell (design × backend × host/guest start).
 * Whether a cell exists is read from the resolved machine configuration, never from a table of
 * designs: a guest with APX needs KVM to support XCR0.APX on that host and backend, and a design
 * that keeps R16–R31 in hardware-protected state needs a backend whose vCPU state is protected.
 */
export function machineProvider(o: MachineProviderOptions): CheckProvider {
  const designs = o.designs ?? BUILTIN_DESIGNS;
  const hostCpu = o.hostCpu ?? ((apx: boolean) => cpuProfile(apx ? "dmr" : "spr"));
  const backendOf = (name: string): VendorOps => {
    const b = o.backends.find((x) => x.name === name);
    if (!b) throw new ModelBugError(`machineProvider: unknown backend ${name}`);
    return b;
  };
  const designOf = (name: string): Design => {
    const d = designs.find((x) => x.name === name);
    if (!d) throw new ModelBugError(`machineProvider: unknown design ${name}`);
    return d;
  };
  const machines = new Map<string, Machine>();
  /** Per cell and valuation: the peers' runs for classify (their states cached along the event sequences). */
  const peerRuns = new Map<string, PeerRun[]>();
  const cellKey = (cell: CellSpec) => `${cell.design}|${cell.backend}|${cell.host.cpuApx}|${cell.host.kernelApx}|${cell.guest.apx}`;
  const assumptions = new AssumptionSpace(o.options ?? {}, o.sweep ?? "each");
  /** The alphabet of the machine the search runs on where host NMIs fold (core's AlphabetOptions.hostNmi). */
  const foldingAlphabet = { ...o.alphabet, hostNmi: "folded" as const };
  /** `folded`: the machine the search runs on, which folds host NMIs (core's AlphabetOptions.hostNmi). */
  const machineFor = (cell: CellSpec, folded = false): Machine => {
    const key = `${cellKey(cell)}${folded ? "|folded" : ""}`;
    let m = machines.get(key);
    if (!m) {
      const backend = backendOf(cell.backend);
      m = createMachine({
        backend,
        design: designOf(cell.design),
        host: { cpu: hostCpu(cell.host.cpuApx, backend), kernelApx: cell.host.kernelApx },
        guest: { apx: cell.guest.apx },
        designs,
        assumptions,
        ...(folded ? { alphabet: foldingAlphabet } : o.alphabet ? { alphabet: o.alphabet } : {}),
      });
      machines.set(key, m);
    }
    return m;
  };
  const provider: CheckProvider = {
    designs: designs.map((d) => d.name),
    backends: o.backends.map((b) => b.name),
    notApplicable,
    subject,
    release: (cell) => {
      const prefix = `${cellKey(cell)}|`;
      for (const k of [...peerRuns.keys()]) if (k.startsWith(prefix)) peerRuns.delete(k);
    },
    egprHome: (name) => designs.find((d) => d.name === name)?.egprHome,
    ...(assumptions.size > 1 ? { sweep: { mode: (o.sweep ?? "each") as "each" | "all", assumptions: [...assumptions.swept] } } : {}),
  };
  /**
   * The findings rule (docs/model.md#findings): a violation comes from code every design shares
   * when its event sequence, run under each OTHER built-in or loaded design that keeps R16–R31 in the
   * same place (egprHome) and exists in this cell, breaks the same invariant at its last event — for
   * every such peer that ran the events before it without breaking anything but apxf-c-needs-apx (a
   * peer whose data already went wrong on the way, or one that rejects an event, says nothing about
   * this sequence) — and at least one peer ran them so. Otherwise the violation is the design's.
   */
  function classify(cell: CellSpec, events: readonly KvmxEvent[], invariant: InvariantName, variant: number): "violation" | "finding" {
    const key = `${cellKey(cell)}|${variant}`;
    let runs = peerRuns.get(key);
    if (!runs) {
      const home = designOf(cell.design).egprHome;
      const peers = designs.filter((d) => d.name !== cell.design && d.egprHome === home).map((d) => ({ ...cell, design: d.name }));
      runs = peers.filter((p) => notApplicable(p) === undefined).map((p) => new PeerRun(machineFor(p), variant));
      peerRuns.set(key, runs);
    }
    if (runs.length === 0) return "violation";
    // The peer that last disagreed goes first: a design's violation is usually told apart by the same one.
    let comparable = 0;
    for (let k = 0; k < runs.length; k++) {
      const outcome = runs[k]!.outcome(events, invariant);
      if (outcome === "broken-before") continue;
      if (outcome === "breaks") {
        comparable++;
        continue;
      }
      if (k > 0) runs.unshift(...runs.splice(k, 1));
      return "violation";
    }
    return comparable > 0 ? "finding" : "violation";
  }
  return provider;

  function notApplicable(cell: CellSpec): string | undefined {
    const m = machineFor(cell);
    const cfg = m.config;
    if (cell.guest.apx && !cfg.guestApx) {
      return (cfg.hostXcr0 & APX_BIT) === 0n
        ? `host CPU ${cfg.hostCpu.name} does not enumerate APX, so no guest can have it`
        : `${cfg.backend.name} leaves APX out of KVM's supported XCR0 (supported 0x${cfg.supportedXcr0.toString(16)})`;
    }
    const d = cfg.design;
    if (d.egprHome === "hardware" && !m.initialState().vcpus[0]?.protectedState) {
      return `design ${d.name} keeps R16–R31 in protected state; ${cfg.backend.name} vCPUs have none`;
    }
    if (d.hardwareXcr0Switch && cfg.backend.xfeatureSwitch === "module") {
      return `design ${d.name} needs a VM-entry XCR0 switch; on ${cfg.backend.name} the module owns XCR0`;
    }
    const missing = [...new Set(d.actions.map((a) => a.anchor))].filter((a) => !backendAnchors(cfg.backend, cfg.pre).has(a));
    if (missing.length > 0) return `${cfg.backend.name} has no ${missing.join(", ")} site for design ${d.name}'s actions`;
    return undefined;
  }

  function subject(cell: CellSpec): CheckSubject {
    const m = machineFor(cell);
    const start = m.initialState();
    const d = m.config.design;
    const vcpu = start.vcpus[0];
    // The search gets a machine of its own only where folding applies (a -mapxf host, NMIs offered).
    const folds = o.foldHostNmis !== false && hostNmisFolded({ alphabet: foldingAlphabet, kernelApx: cell.host.kernelApx });
    const subject: CheckSubject<MachineState, KvmxEvent> = {
      model: m,
      ...(folds ? { explore: machineFor(cell, true) } : {}),
      start,
      scenario: (events, expect, variant = 0) => machineScenario(cell, m, events, expect.violations, variant),
      costProbes: () => costProbes(m, start, cell),
      // KVM runs no design code for a vCPU whose state the backend protects (unless the design says "apply").
      exercised: !(vcpu?.protectedState && (d.protectedGuests ?? "skip") === "skip"),
      ...(o.findings === false ? {} : { classify: (events, invariant, variant) => classify(cell, events, invariant, variant), eventClass, designFree }),
    };
    return subject as CheckSubject;
  }
}

/**
 * One peer design's runs of the event sequences classify is asked about, as a trie of the states
 * after each prefix: breadth-first counterexamples share long prefixes, so each prefix runs once.
 * An event the peer rejects (its model throws) ends the path: the peer does not break there.
 */
class PeerRun {
  private readonly root: PeerNode;
  constructor(
    private readonly machine: Machine,
    private readonly variant: number,
  ) {
    this.root = { state: machine.initialState(), children: new Map(), violations: [], brokenBefore: false };
  }

  /**
   * What the peer does with `events`: "breaks" (the last event breaks `invariant`, nothing before it
   * broke anything), "holds" (it does not), or "broken-before" (an earlier event already broke an
   * invariant, or the peer rejects an event: its world differs and it says nothing about this path).
   */
  outcome(events: readonly KvmxEvent[], invariant: InvariantName): "breaks" | "holds" | "broken-before" {
    let node = this.root;
    for (const e of events) {
      if (node.brokenBefore || node.rejected) return "broken-before";
      node = this.step(node, e);
    }
    if (node.rejected) return "broken-before";
    return node.violations.includes(invariant) ? "breaks" : "holds";
  }

  private step(node: PeerNode, event: KvmxEvent): PeerNode {
    let child = node.children.get(event);
    if (child === undefined) {
      const brokenBefore = node.brokenBefore || node.violations.some((v) => !STATE_NEUTRAL.has(v));
      try {
        const r = this.machine.apply(node.state, event, undefined, this.variant);
        child = { state: r.state, children: new Map(), violations: r.violations.map((v) => v.invariant), brokenBefore };
      } catch {
        child = { state: node.state, children: new Map(), violations: [], brokenBefore, rejected: true };
      }
      node.children.set(event, child);
    }
    return child;
  }
}

/**
 * Invariants whose violation leaves the model's data as it was: apxf-c-needs-apx says C code ran
 * where a -mapxf kernel's first R16–R31 use would #UD, and the model runs on. A peer that broke only
 * these on the way is still comparable (otherwise no design is ever comparable on a -mapxf host).
 */
const STATE_NEUTRAL: ReadonlySet<InvariantName> = new Set<InvariantName>(["apxf-c-needs-apx"]);

interface PeerNode {
  state: MachineState;
  children: Map<KvmxEvent, PeerNode>;
  /** What the event that reached this node broke. */
  violations: readonly InvariantName[];
  brokenBefore: boolean;
  rejected?: boolean;
}

/**
 * Classes for classify: each uAPI call its own, every event that runs the vCPU (guest instructions,
 * NMIs, preemption, VM-Fail, vendor events) one class "runs the vCPU" — numbered in the order first
 * met (class 29 takes every kind past the 29th).
 */
const KIND_CLASS = new Map<string, number>([["(vcpu-run)", 0]]);
function eventClass(e: KvmxEvent): number {
  const k = designFree(e) || e.kind === "migrate" ? e.kind : "(vcpu-run)";
  let c = KIND_CLASS.get(k);
  if (c === undefined) KIND_CLASS.set(k, (c = Math.min(KIND_CLASS.size, 29)));
  return c;
}

/**
 * uAPI calls handled outside KVM_RUN: no design code runs in them (designs act only at the world
 * switch), and a design's EGPR home — the same for the peers classify compares — is all they see.
 * `migrate` is left out (its destination may be another design); any kind not listed counts as
 * running design code, which only makes classification finer.
 */
const DESIGN_FREE_KINDS: ReadonlySet<string> = new Set(["get-xsave", "set-xsave", "get-regs", "set-regs", "set-xcrs", "reset", "init"]);
const designFree = (e: KvmxEvent): boolean => DESIGN_FREE_KINDS.has(e.kind);

/** The anchors a backend's run sequence places (plus the x86 ones every backend has). */
const anchorMemo = new WeakMap<VendorOps, Set<string>[]>();
function backendAnchors(backend: VendorOps, pre: boolean): Set<string> {
  let both = anchorMemo.get(backend);
  if (!both) anchorMemo.set(backend, (both = []));
  const k = pre ? 1 : 0;
  return (both[k] ??= new Set([...ENTER_GUEST_PRE, ...ENTER_GUEST_POST, ...backend.runSites({ pre })].flatMap((s) => (s.anchor ? [s.anchor] : []))));
}

/**
 * Representative round trips (docs/model.md#costs): with a guest that enabled APX (when it has it) and
 * wrote R16, a full exit (OUT to userspace) and a fastpath exit (WRMSRNS-immediate, which the event
 * follows with an OUT — priced as the difference to a plain OUT trip).
 */
function costProbes(m: Machine, start: MachineState, cell: CellSpec): CostProbe<KvmxEvent>[] {
  // A booted guest enables every XCR0 feature it has (with APX only if its CPUID has it); take that
  // XSETBV from the model's own alphabet, so the value is one the model accepts. On an APX host a
  // guest without APX thus runs with XCR0 ≠ host XCR0, and kvm_load_xfeatures' XSETBVs are priced.
  const xsetbvs = m.events(start).filter((e): e is Extract<KvmxEvent, { kind: "guest-xsetbv" }> => e.kind === "guest-xsetbv");
  const widest = xsetbvs
    .filter((e) => ((BigInt(e.value) & APX_BIT) !== 0n) === cell.guest.apx)
    .sort((a, b) => (BigInt(b.value) > BigInt(a.value) ? 1 : -1))[0];
  const setup: KvmxEvent[] = widest ? [widest] : [];
  if (cell.guest.apx) setup.push({ kind: "guest-write", reg: "r16", value: "0x1111" });
  const reg = cell.guest.apx ? "r16" : "rax";
  return [
    { kind: "full-exit", setup, trip: [{ kind: "guest-io" }] },
    { kind: "fastpath", setup, trip: [{ kind: "guest-wrmsrns-imm", reg }], baseline: [{ kind: "guest-io" }] },
  ];
}
