import { describe, expect } from "vitest";
import { fc, test } from "@fast-check/vitest";
import {
  Tag, allVendorFields, createMachine, stateKey, vid,
  type KvmxEvent, type MachineState, type TraceStep, type VendorOps,
} from "@kvmx/core";
import { createSevEsBackend, sevEsBackend, svmApxBackend, svmBackend } from "../src/index.js";

const sevEsApxBackend = createSevEsBackend({ apx: "hypothetical" });
const BACKENDS: readonly VendorOps[] = [svmBackend, svmApxBackend, sevEsBackend, sevEsApxBackend];

/** A value no event writes: if a later event read it, its outcome would show it. */
const GARBAGE = vid(0x5eed_0bad_0000_0041n);

/** The state with every "exit-info" vendor field of every vCPU overwritten (tags with a host tag, values with garbage). */
function scrambleExitInfo(s: MachineState): MachineState {
  const out = s.copy();
  const fields = allVendorFields().filter((f) => f.kind === "exit-info");
  for (const v of out.vcpus) {
    for (const f of fields) {
      if (!v.hasVendorField(f.id)) continue;
      v.vendorSetId(f.id, f.name.endsWith(".tag") ? Tag.hostUser : GARBAGE);
    }
  }
  return out;
}

describe("vendor field kinds", () => {
  for (const backend of BACKENDS) {
    test(`${backend.name} declares its fields with a kind each; the "exit-info" ones include the VMCB exit fields`, () => {
      const declared = new Set(backend.vendorFields ?? []);
      const byName = new Map(allVendorFields().filter((f) => declared.has(f.id)).map((f) => [f.name, f.kind]));
      expect(byName.get("vmcb.control.exit_code")).toBe("exit-info");
      expect(byName.get("vmcb.save.cpl")).toBe("control");
      if (backend.name.startsWith("sev-es")) {
        expect(byName.get("vmsa.gpr.3")).toBe("value");
        expect(byName.get("vmsa.gpr.3.tag")).toBe("tag");
        expect(byName.get("ghcb.gpr.6")).toBe("value");
        expect(byName.get("ghcb.response")).toBe("control");
        expect(byName.has("vmsa.gpr.31")).toBe(backend.name === "sev-es-apx");
        expect(byName.get("hsa.gpr.16")).toBe(backend.name === "sev-es-apx" ? "value" : undefined);
      }
    });

    test.prop([fc.array(fc.nat(), { minLength: 1, maxLength: 10 }), fc.boolean(), fc.boolean()], { numRuns: 25 })(
      `${backend.name}: "exit-info" fields are meaningless between events — overwriting them changes no event's trace, violations or next state`,
      (picks, pre, kernelApx) => {
        const m = createMachine({ backend, design: "asm-conditional", host: { cpu: "dmr", kernelApx }, guest: { apx: true }, pre });
        let s = m.initialState();
        for (const p of picks) {
          const evs: readonly KvmxEvent[] = m.events(s);
          const e = evs[p % evs.length]!;
          const t1: TraceStep[] = [];
          const t2: TraceStep[] = [];
          const a = m.apply(s, e, t1);
          const b = m.apply(scrambleExitInfo(s), e, t2);
          expect(b.violations).toEqual(a.violations);
          expect(t2).toEqual(t1);
          expect(stateKey(b.state)).toBe(stateKey(a.state));
          s = a.state;
        }
      },
    );
  }

  test("the scramble reaches a field a later event reads: overwriting the VMCB's CPL (a control) changes the outcome", () => {
    const m = createMachine({ backend: svmBackend, design: "asm-conditional", host: { cpu: "zen", kernelApx: false }, guest: { apx: false } });
    const s = m.apply(m.initialState(), { kind: "guest-io" }).state;
    const cpl = allVendorFields().find((f) => f.name === "vmcb.save.cpl")!;
    const bad = s.copy();
    bad.vcpus[0]!.vendorSetId(cpl.id, vid(3n));
    const e: KvmxEvent = { kind: "guest-xsetbv", value: "0x7" };
    expect(m.apply(s, e).state.vcpus[0]!.xcr0).toBe(0x7n);
    // XSETBV at CPL 3 is #GP: the guest's XCR0 stays.
    expect(m.apply(bad, e).state.vcpus[0]!.xcr0).toBe(0x1n);
  });
});
