import { afterAll, bench, describe } from "vitest";
import { createMachine, roundTripsPerSecond, type KvmxEvent, type Machine, type MachineState, type VendorOps } from "@kvmx/core";
import { tdxBackend, vmxBackend, vmxNestedBackend } from "../src/index.js";

/**
 * Speed goal: simulated round trips per second for the nested VMX and TDX backends, next to plain
 * VMX. Nested: L1 CPUID (L0 handles it), L2 CPUID reflected to L1 (vmcs02 → vmcs12 sync, two VMCS
 * switches counted in the next VMLAUNCH), L2 preemption timer handled by L0. TDX: CPUID and OUT as
 * TDVMCALLs, a KVM hypercall. asm-conditional, dmr host, guest APX on; apply clones the state.
 */
interface Case { readonly label: string; readonly backend: VendorOps; readonly prep: readonly KvmxEvent[]; readonly ev: KvmxEvent }
const LAUNCH: KvmxEvent = { kind: "vmx-nested:vmlaunch" };
const CASES: Case[] = [
  { label: "vmx: cpuid", backend: vmxBackend, prep: [], ev: { kind: "guest-cpuid" } },
  { label: "vmx-nested: L1 cpuid", backend: vmxNestedBackend, prep: [], ev: { kind: "guest-cpuid" } },
  { label: "vmx-nested: L1 VMLAUNCH", backend: vmxNestedBackend, prep: [], ev: LAUNCH },
  { label: "vmx-nested: L2 cpuid → L1", backend: vmxNestedBackend, prep: [LAUNCH], ev: { kind: "vmx-nested:l2-exit-reflected" } },
  { label: "vmx-nested: L2 timer → L0", backend: vmxNestedBackend, prep: [LAUNCH], ev: { kind: "vmx-nested:l2-exit-l0" } },
  { label: "tdx: cpuid (TDVMCALL)", backend: tdxBackend, prep: [], ev: { kind: "guest-cpuid" } },
  { label: "tdx: io (TDVMCALL)", backend: tdxBackend, prep: [], ev: { kind: "guest-io" } },
  { label: "tdx: hypercall", backend: tdxBackend, prep: [], ev: { kind: "tdx:hypercall", nr: 1 } },
];

const prepared = CASES.map((c) => {
  const m: Machine = createMachine({ backend: c.backend, design: "asm-conditional", host: { cpu: "dmr", kernelApx: false }, guest: { apx: true } });
  let s: MachineState = m.apply(m.initialState(), { kind: "guest-xsetbv", value: "0x800e7" }).state;
  for (const e of c.prep) s = m.apply(s, e).state;
  return { ...c, m, s };
});

let sink = 0;
describe("nested VMX and TDX round trips", () => {
  for (const p of prepared) bench(p.label, () => void (sink ^= p.m.apply(p.s, p.ev).violations.length));
});

afterAll(() => {
  const lines = ["", "Simulated round trips per second (median of 5), nested VMX and TDX next to plain VMX"];
  for (const p of prepared) {
    const r = roundTripsPerSecond(p.m, p.s, p.ev);
    lines.push(`${p.label.padEnd(30)}${`${Math.round(r).toLocaleString("en-US")}/s`.padStart(14)}`);
  }
  console.log(lines.join("\n") + `\n(sink ${sink & 1})`);
});
