import { describe, expect, it } from "vitest";
import { KVM_CAP } from "../src/caps.js";
import { HostKvm } from "../src/host/kvm.js";
import { probeKvm } from "../src/host/probe.js";
import { SIM_PATH, SimulatedLibc } from "./simulated-libc.js";

describe("probeKvm", () => {
  it("reports API version, every capability (XSAVE2 from a VM fd), supported XCR0 and CPUID, leaving no VM behind", () => {
    const sim = new SimulatedLibc();
    sim.xsave2Size = 8192;
    sim.supportedXcr0 = 0x1_0000_00e7n;
    const kvm = HostKvm.open(SIM_PATH, sim);
    const p = probeKvm(kvm);
    expect(p.apiVersion).toBe(12);
    expect(Object.keys(p.caps)).toEqual(Object.keys(KVM_CAP));
    expect(p.caps.XSAVE2).toBe(8192); // the system fd says 0 in the simulation: the VM fd's answer wins
    expect(p.caps.SYNC_REGS).toBe(7);
    expect(p.supportedXcr0).toBe(0x1_0000_00e7n);
    expect(p.cpuid).toHaveLength(300);
    expect([...sim.fds.values()].map((k) => k.kind)).toEqual(["kvm"]);
    kvm.close();
  });
});
