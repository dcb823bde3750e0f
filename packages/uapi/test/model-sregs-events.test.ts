import { svmBackend } from "@kvmx/svm";
import { describe, expect, it } from "vitest";
import { errnoOf } from "./errno-of.js";
import { cpuidLoopProgram, loadGuestProgram } from "../src/guest/guest-program.js";
import { GUEST_VECTOR_PORT } from "../src/guest/long-mode.js";
import { ModelKvm } from "../src/model/model-kvm.js";
import { writeImmediateExit } from "../src/structs/kvm-run.js";
import { kvmCpuid2Size } from "../src/structs/flexible.js";

/**
 * KVM_GET/SET_SREGS, KVM_GET/SET_VCPU_EVENTS, CR8 and KVM_SET_CPUID2 after a run, as the lab's
 * kvm_amd 6.1 and 6.12 showed them (scenarios/real/{reset-state,sregs,vcpu-events,cpuid-xcrs-order}).
 */
const kvmOf = (release: string) => new ModelKvm({ backend: svmBackend, cpu: "zen", kernel: { release, onlineCpus: 1 } });
const k612 = kvmOf("6.12.117+deb12-amd64");
const k61 = kvmOf("6.1.0-57-amd64");
const vcpuOf = (k = k612) => {
  const vm = k.createVm();
  const v = vm.createVcpu(0);
  v.setCpuid2(k.getSupportedCpuid());
  return { vm, v };
};

describe("KVM_GET/SET_SREGS on kvm_amd", () => {
  it("RESET segments are init_vmcb's, seen through svm_get_segment (CS 0xa, SS 0x2, DS 0x3 accessed, TR busy 0x3)", () => {
    const s = k612.createVm().createVcpu(0).getSregs();
    expect([s.cs.type, s.ss.type, s.ds.type, s.tr.type, s.ldt.type]).toEqual([0xa, 0x2, 0x3, 0x3, 0x2]);
  });

  it("segments round-trip as the VMCB keeps them: G from the limit, unusable = not present, SS.DPL = CPL, no padding", () => {
    const { v } = vcpuOf();
    const s = v.getSregs();
    v.setSregs({ ...s, ds: { ...s.ds, g: 1, unusable: 1 }, cs: { ...s.cs, padding: 7 }, tr: { ...s.tr, type: 0x9 }, gdt: { ...s.gdt, padding: [0x1234, 0, 0] } });
    const r = v.getSregs();
    // the type keeps what was set (the accessed bit is only added for usable data segments)
    expect([r.ds.g, r.ds.present, r.ds.unusable, r.ds.type]).toEqual([0, 0, 1, 0x3]);
    expect([r.cs.padding, r.tr.type, r.gdt.padding[0]]).toEqual([0, 0xb, 0]);
  });

  it("refuses what kvm_is_valid_sregs refuses; EFER reserved bits only from 6.12", () => {
    const { v } = vcpuOf();
    const s = v.getSregs();
    expect(errnoOf(() => v.setSregs({ ...s, cr0: 0x8000_0010n }))).toBe("EINVAL");
    expect(errnoOf(() => v.setSregs({ ...s, cr0: 0x2000_0011n }))).toBe("EINVAL");
    expect(errnoOf(() => v.setSregs({ ...s, cr4: 0x8000_0000n }))).toBe("EINVAL");
    expect(errnoOf(() => v.setSregs({ ...s, efer: 0x400n }))).toBe("EINVAL");
    expect(errnoOf(() => v.setSregs({ ...s, cs: { ...s.cs, l: 1 } }))).toBe("EINVAL");
    expect(errnoOf(() => v.setSregs({ ...s, apic_base: 0xfee0_0901n }))).toBe("EINVAL");
    expect(errnoOf(() => v.setSregs({ ...s, efer: 0x400_0000n }))).toBe("EINVAL");
    const old = vcpuOf(k61).v;
    expect(errnoOf(() => old.setSregs({ ...old.getSregs(), efer: 0x400_0000n }))).toBe("ok");
    expect(old.getSregs().efer).toBe(0x400_0000n);
  });

  it("the first bit of the interrupt bitmap becomes the injected interrupt, delivered at the next KVM_RUN", () => {
    const { vm, v } = vcpuOf();
    loadGuestProgram(vm, v, cpuidLoopProgram(1n));
    v.setSregs({ ...v.getSregs(), interrupt_bitmap: [0x30n, 0n, 0n, 0n] });
    expect(v.getSregs().interrupt_bitmap).toEqual([0x10n, 0n, 0n, 0n]);
    expect(v.getVcpuEvents().interrupt).toMatchObject({ injected: 1, nr: 4 });
    expect(v.run()).toMatchObject({ kind: "io", port: GUEST_VECTOR_PORT, data: Uint8Array.of(4) });
    expect(v.getSregs().interrupt_bitmap[0]).toBe(0n);
  });

  it("without an in-kernel APIC CR8 is kvm_run.cr8 at every KVM_RUN (a KVM_SET_SREGS value does not survive it)", () => {
    const { vm, v } = vcpuOf();
    loadGuestProgram(vm, v, cpuidLoopProgram(1n));
    v.setSregs({ ...v.getSregs(), cr8: 5n });
    expect(v.getSregs().cr8).toBe(5n);
    v.setSregs({ ...v.getSregs(), cr8: 0x10n }); // reserved bits: kvm_set_cr8 fails, ignored by KVM_SET_SREGS
    expect(v.getSregs().cr8).toBe(5n);
    v.run();
    expect(v.getSregs().cr8).toBe(0n);
  });
});

describe("KVM_GET/SET_VCPU_EVENTS on kvm_amd", () => {
  it("flags, refused events, dropped pending exceptions, soft exceptions, the SVM interrupt shadow", () => {
    const { v } = vcpuOf();
    const e = v.getVcpuEvents();
    expect(e.flags).toBe(0xd);
    for (const bad of [{ ...e, flags: 0x40 }, { ...e, flags: 0x10 }, { ...e, flags: 0x20 }, { ...e, exception: { ...e.exception, injected: 1, nr: 2 } }]) {
      expect(errnoOf(() => v.setVcpuEvents(bad))).toBe("EINVAL");
    }
    v.setVcpuEvents({ ...e, exception: { ...e.exception, pending: 1, nr: 13 } });
    expect(v.getVcpuEvents().exception).toMatchObject({ injected: 0, pending: 0, nr: 13 });
    v.setVcpuEvents({ ...e, exception: { ...e.exception, injected: 1, nr: 3 } });
    expect(v.getVcpuEvents().exception).toMatchObject({ injected: 0, nr: 3 });
    v.setVcpuEvents({ ...e, interrupt: { ...e.interrupt, shadow: 1 } });
    expect(v.getVcpuEvents().interrupt.shadow).toBe(3);
  });

  it("pending NMIs: a count (at most 2) on 6.12, a flag on 6.1", () => {
    for (const [k, want] of [[k612, 2], [k61, 1]] as const) {
      const { v } = vcpuOf(k);
      const e = v.getVcpuEvents();
      v.setVcpuEvents({ ...e, nmi: { ...e.nmi, pending: 3 } });
      expect(v.getVcpuEvents().nmi.pending).toBe(want);
    }
  });

  it("an injected exception reaches the guest's IDT at the next KVM_RUN, with its error code, and is gone after", () => {
    const { vm, v } = vcpuOf();
    loadGuestProgram(vm, v, cpuidLoopProgram(1n));
    const e = v.getVcpuEvents();
    v.setVcpuEvents({ ...e, exception: { ...e.exception, injected: 1, nr: 13, has_error_code: 1, error_code: 0x18 } });
    expect(v.run()).toMatchObject({ kind: "io", port: GUEST_VECTOR_PORT, data: Uint8Array.of(13) });
    expect(v.getVcpuEvents().exception.injected).toBe(0);
  });
});

describe("KVM_SET_CPUID2 after KVM_RUN, KVM_GET_CPUID2 on 6.1", () => {
  it("once the guest ran, only the same table (after its runtime fields) is accepted; another is EINVAL; an immediate exit is no run", () => {
    const { vm, v } = vcpuOf();
    loadGuestProgram(vm, v, cpuidLoopProgram(1n));
    writeImmediateExit(v.kvmRun, 1);
    v.run();
    writeImmediateExit(v.kvmRun, 0);
    const other = k612.getSupportedCpuid().slice(1);
    v.setCpuid2(other);
    v.setCpuid2(k612.getSupportedCpuid());
    v.run();
    expect(errnoOf(() => v.setCpuid2(k612.getSupportedCpuid()))).toBe("ok");
    expect(errnoOf(() => v.setCpuid2(other))).toBe("EINVAL");
  });

  it("6.1 writes the entries of a successful KVM_GET_CPUID2 but leaves the caller's nent", () => {
    for (const [k, want] of [[k612, k612.getSupportedCpuid().length], [k61, 300]] as const) {
      const { v } = vcpuOf(k);
      const buf = new Uint8Array(kvmCpuid2Size(300));
      new DataView(buf.buffer).setUint32(0, 300, true);
      v.getCpuid2Into(buf);
      expect(new DataView(buf.buffer).getUint32(0, true)).toBe(want);
    }
  });
});
