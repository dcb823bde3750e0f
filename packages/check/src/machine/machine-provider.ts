import {
  BUILTIN_DESIGNS,
  ModelBugError,
  cpuProfile,
  createMachine,
  type Design,
  type HostCpu,
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
  options?: Partial<ModelOptions>;
  alphabet?: MachineConfig["alphabet"];
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
  const machineFor = (cell: CellSpec): Machine => {
    const key = `${cell.design}|${cell.backend}|${cell.host.cpuApx}|${cell.host.kernelApx}|${cell.guest.apx}`;
    let m = machines.get(key);
    if (!m) {
      const backend = backendOf(cell.backend);
      m = createMachine({
        backend,
        design: designOf(cell.design),
        host: { cpu: hostCpu(cell.host.cpuApx, backend), kernelApx: cell.host.kernelApx },
        guest: { apx: cell.guest.apx },
        designs,
        ...(o.options ? { options: o.options } : {}),
        ...(o.alphabet ? { alphabet: o.alphabet } : {}),
      });
      machines.set(key, m);
    }
    return m;
  };
  return {
    designs: designs.map((d) => d.name),
    backends: o.backends.map((b) => b.name),
    notApplicable(cell) {
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
      return undefined;
    },
    subject(cell): CheckSubject {
      const m = machineFor(cell);
      const start = m.initialState();
      const subject: CheckSubject<MachineState, KvmxEvent> = {
        model: m,
        start,
        scenario: (events, expect) => machineScenario(cell, m, events, expect.violations),
        costProbes: () => costProbes(m, start, cell),
      };
      return subject as CheckSubject;
    },
  };
}

/**
 * Representative round trips (DESIGN.md "Cost"): with a guest that enabled APX (when it has it) and
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
