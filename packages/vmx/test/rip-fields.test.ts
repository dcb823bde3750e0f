import { describe, expect, it } from "vitest";
import { createMachine, cpuProfile, fingerprint, vendorFieldByName, vid, type MachineState } from "@kvmx/core";
import { tdxBackend, vmxNestedBackend } from "@kvmx/vmx";

/** Saved guest RIPs ("rip" vendor fields) and the fingerprint (docs/model.md#rip-values). */
describe("saved guest RIPs in the state fingerprint", () => {
  const nested = (pre: boolean) =>
    createMachine({ backend: vmxNestedBackend, design: "upstream-v4", host: { cpu: cpuProfile("dmr"), kernelApx: false }, guest: { apx: true }, pre });
  const withRip = (st: MachineState, field: string, rip: bigint): MachineState => {
    const s = st.copy();
    s.vcpu.vendorSetId(vendorFieldByName(field)!.id, vid(rip));
    return s;
  };
  const same = (a: MachineState, b: MachineState) => {
    const x = fingerprint(a, { hi: 0, lo: 0 });
    const y = fingerprint(b, { hi: 0, lo: 0 });
    return x.hi === y.hi && x.lo === y.lo;
  };

  it("leaves L2's saved RIP and a parked GUEST_RIP out in the POST layout", () => {
    const m = nested(false);
    const l2 = m.apply(m.initialState(), { kind: "vmx-nested:vmlaunch" }).state;
    for (const f of ["vmcs12.guest_rip", "vmcs12.host_rip", "vmcs01.GUEST_RIP"]) {
      expect(vendorFieldByName(f)?.kind, f).toBe("rip");
      expect(same(withRip(l2, f, 0x10_0005n), withRip(l2, f, 0x10_0009n)), f).toBe(true);
    }
    // A control next to them still counts.
    expect(same(withRip(l2, "vmcs12.guest_cr3", 0x1000n), withRip(l2, "vmcs12.guest_cr3", 0x2000n))).toBe(false);
  });

  it("compares them exactly in PRE, where KVM_GET_REGS can read a parked RIP into regs[]", () => {
    const m = nested(true);
    const l2 = m.apply(m.initialState(), { kind: "vmx-nested:vmlaunch" }).state;
    expect(same(withRip(l2, "vmcs12.guest_rip", 0x10_0005n), withRip(l2, "vmcs12.guest_rip", 0x10_0009n))).toBe(false);
  });

  it("compares them exactly on a machine whose KVM code a variant edits", () => {
    const m = createMachine({
      backend: tdxBackend, design: "fpstate", host: { cpu: cpuProfile("dmr"), kernelApx: false }, guest: { apx: true },
      variant: { name: "noop", description: "no edits", features: [], steps: [] },
    });
    const st = m.initialState();
    expect(same(withRip(st, "tdvps.rip", 0x10_0005n), withRip(st, "tdvps.rip", 0x10_0009n))).toBe(false);
    const plain = createMachine({ backend: tdxBackend, design: "fpstate", host: { cpu: cpuProfile("dmr"), kernelApx: false }, guest: { apx: true } });
    const s0 = plain.initialState();
    expect(same(withRip(s0, "tdvps.rip", 0x10_0005n), withRip(s0, "tdvps.rip", 0x10_0009n))).toBe(true);
  });
});
