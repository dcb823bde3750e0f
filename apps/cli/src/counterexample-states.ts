/**
 * `kvmx check --verbose`: the state after each event of a counterexample, as TLC prints an error
 * trace. The counterexample's own scenario (the file --trace-out writes) runs on a fresh machine of
 * its cell, as `kvmx run` would run it; each state is then decoded into the fields a reader follows.
 */
import { describeTag, maskNames, parseScenario, runScenario, type MachineState, type RegLayout } from "@kvmx/core";
import type { CounterexampleReport } from "@kvmx/check";
import { backendByName } from "./backends.js";
import { egprOwners } from "./commands/run.js";

const R16 = 16;

/** One list of lines per event: the state after it. */
export function counterexampleStates(ce: CounterexampleReport): string[][] {
  const scenario = parseScenario(ce.scenario, "<counterexample>", { backend: backendByName });
  const { machine } = runScenario(scenario);
  let state = machine.initialState();
  return scenario.events.map((event) => {
    state = machine.apply(state, event).state;
    return stateLines(state);
  });
}

/** The state between events (the CPU back in the VMM task): XCR0s, R16–R31, KVM's register cache. */
export function stateLines(st: MachineState): string[] {
  const cpu = st.cpu;
  const owners = egprOwners(cpu.egprTags());
  const r16 = `R16 ${hex(cpu.gpr(R16))} (${describeTag(cpu.gprTag(R16))}), guest's R16 ${hex(st.expected.get(R16))}`;
  if (st.vcpus.length === 0) return [`XCR0 live ${hex(cpu.xcr0)}, no vCPU · R16–R31 hold ${owners} · ${r16}`];
  const v = st.vcpu;
  const kvmR16 = v.layout.egprsInRegs ? `, regs[R16] ${hex(v.regs.get(R16))} (${describeTag(v.regs.tag(R16))})` : "";
  return [
    `XCR0 live ${hex(cpu.xcr0)}, guest ${hex(v.xcr0)} · R16–R31 hold ${owners} · ${r16}${kvmR16}`,
    `regs_avail ${maskText(v.layout, v.regsAvail)} · regs_dirty ${maskText(v.layout, v.regsDirty)}`,
  ];
}

/** A register mask by short names: "all", "none", "all but RAX,RSP" or the names set. */
function maskText(layout: RegLayout, mask: bigint): string {
  const all = maskNames(layout, layout.allMask);
  const set = new Set(maskNames(layout, mask));
  const short = (n: string) => n.replace(/^VCPU_(REGS?|EXREG)_/, "");
  if (set.size === 0) return "none";
  if (set.size === all.length) return "all";
  if (set.size > all.length / 2) return `all but ${all.filter((n) => !set.has(n)).map(short).join(",")}`;
  return all.filter((n) => set.has(n)).map(short).join(",");
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;
