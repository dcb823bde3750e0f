import { svmBackend } from "@kvmx/svm";
import { vmxBackend } from "@kvmx/vmx";
import { describe, expect, it } from "vitest";
import { KVM_CAP, KVM_X86_GRP_SEV, KVM_X86_XCOMP_GUEST_SUPP } from "../src/caps.js";
import { errnoOf } from "./errno-of.js";
import { kernelSeries } from "../src/model/kernel-release.js";
import { ModelKvm } from "../src/model/model-kvm.js";
import { decodeKvmCpuid2, kvmCpuid2Size } from "../src/structs/flexible.js";
import { KVM_STRUCTS } from "../src/structs/layout.js";

/**
 * What the model answers for the ioctls the lab's kernels were asked about (scenarios/real
 * transcripts): caller-sized CPUID buffers, KVM_GET_EMULATED_CPUID, KVM_GET_CPUID2, the system
 * device attributes, capabilities per kernel version, GETs into caller buffers.
 */
const v612 = { release: "6.12.117+deb12-amd64", onlineCpus: 2 };
const v61 = { release: "6.1.0-57-amd64", onlineCpus: 1 };
const amd = (kernel = v612) => new ModelKvm({ backend: svmBackend, cpu: "zen", kernel });
const cpuidBuffer = (nent: number, prefill = 0): Uint8Array => {
  const b = new Uint8Array(kvmCpuid2Size(nent)).fill(prefill);
  new DataView(b.buffer).setUint32(0, nent, true);
  return b;
};

describe("KVM_GET_SUPPORTED_CPUID / KVM_GET_EMULATED_CPUID into a caller's buffer", () => {
  const kvm = amd();
  const n = kvm.getSupportedCpuid().length;

  it("nent 0 or too few entries: E2BIG and nothing written; enough: nent and exactly those entries", () => {
    for (const nent of [0, 1, n - 1]) {
      const b = cpuidBuffer(nent, 0xaa);
      const before = b.slice();
      expect(errnoOf(() => kvm.getCpuidInto("supported", b))).toBe("E2BIG");
      expect(b).toEqual(before);
    }
    const b = cpuidBuffer(n + 3, 0xaa);
    kvm.getCpuidInto("supported", b);
    expect(decodeKvmCpuid2(b)).toEqual(kvm.getSupportedCpuid());
    // the three spare entries keep the prefill
    expect(b.subarray(kvmCpuid2Size(n)).every((x) => x === 0xaa)).toBe(true);
  });

  it("EMULATED: non-zero padding in the offered entries is EINVAL; three entries need room for four", () => {
    expect(errnoOf(() => kvm.getCpuidInto("emulated", cpuidBuffer(8, 0xaa)))).toBe("EINVAL");
    expect(errnoOf(() => kvm.getCpuidInto("emulated", cpuidBuffer(3)))).toBe("E2BIG");
    const b = cpuidBuffer(4);
    kvm.getCpuidInto("emulated", b);
    expect(decodeKvmCpuid2(b).map((e) => [e.function, e.eax, e.ecx])).toEqual([
      [0, 7, 0],
      [1, 0, 1 << 22],
      [7, 0, kvm.getEmulatedCpuid()[2]!.ecx],
    ]);
  });

  it("a buffer shorter than its nent announces is refused before any ioctl", () => {
    const b = cpuidBuffer(4).subarray(0, 50);
    expect(() => kvm.getCpuidInto("supported", b)).toThrow(/needs 168 bytes/);
  });
});

describe("KVM_GET_CPUID2", () => {
  it("is KVM_SET_CPUID2's table with the runtime fields; too small a nent is E2BIG, nothing written", () => {
    const kvm = amd();
    const v = kvm.createVm().createVcpu(0);
    expect(v.getCpuid2()).toEqual([]);
    v.setCpuid2(kvm.getSupportedCpuid());
    const got = v.getCpuid2();
    expect(got.length).toBe(kvm.getSupportedCpuid().length);
    // CPUID.0xD.0 EBX: the XSAVE size of XCR0 = FP only (576)
    expect(got.find((e) => e.function === 0xd && e.index === 0)!.ebx).toBe(576);
    const small = cpuidBuffer(got.length - 1, 0x55);
    expect(errnoOf(() => v.getCpuid2Into(small))).toBe("E2BIG");
    expect(small.subarray(4).every((x) => x === 0x55)).toBe(true);
  });
});

describe("device attributes on the system fd", () => {
  it("KVM_X86_XCOMP_GUEST_SUPP is the supported XCR0; SVM's SEV group answers from 6.12 only; anything else ENXIO", () => {
    const k = amd();
    expect(k.getDeviceAttr(0, KVM_X86_XCOMP_GUEST_SUPP)).toBe(k.cfg.supportedXcr0);
    expect(k.hasDeviceAttr(0, 1n)).toBe(false);
    expect(errnoOf(() => k.getDeviceAttr(0, 1n))).toBe("ENXIO");
    expect(k.getDeviceAttr(KVM_X86_GRP_SEV, 0n)).toBe(0n);
    expect(errnoOf(() => amd(v61).getDeviceAttr(KVM_X86_GRP_SEV, 0n))).toBe("ENXIO");
    expect(errnoOf(() => new ModelKvm({ backend: vmxBackend, cpu: "kvm-pvm", kernel: v612 }).getDeviceAttr(KVM_X86_GRP_SEV, 0n))).toBe("ENXIO");
  });
});

describe("capabilities and limits per kernel version", () => {
  it("6.1 and 6.12 differ where their sources differ; NR_VCPUS follows the online CPUs", () => {
    const a = amd(v61);
    const b = amd(v612);
    expect([a.checkExtension("MAX_VCPUS"), b.checkExtension("MAX_VCPUS")]).toEqual([1024, 4096]);
    expect([a.checkExtension("MAX_VCPU_ID"), b.checkExtension("MAX_VCPU_ID")]).toEqual([4096, 16384]);
    expect([a.checkExtension("NR_VCPUS"), b.checkExtension("NR_VCPUS")]).toEqual([1, 2]);
    for (const c of ["VM_TYPES", "PRE_FAULT_MEMORY", "X86_APIC_BUS_CYCLES_NS", "USER_MEMORY2", "MEMORY_FAULT_INFO", "X86_GUEST_MODE"] as const) {
      expect([c, a.checkExtension(c), b.checkExtension(c)]).toEqual([c, 0, 1]);
    }
    expect(a.checkExtension(KVM_CAP.NR_MEMSLOTS)).toBe(32764);
    expect(kernelSeries("6.6.1").series).toBe("6.1");
    expect(kernelSeries("6.18.44-fc").series).toBe("6.12");
  });
});

describe("GETs into a caller's buffer", () => {
  it("KVM writes the struct from offset 0 and nothing after; KVM_GET_XSAVE2 writes the KVM_CAP_XSAVE2 size", () => {
    const k = amd();
    const v = k.createVm().createVcpu(0);
    const sregs = new Uint8Array(400).fill(0xff);
    v.getInto("KVM_GET_SREGS", sregs);
    expect(sregs.subarray(KVM_STRUCTS.kvm_sregs.size).every((x) => x === 0xff)).toBe(true);
    expect(sregs.subarray(280, 312).every((x) => x === 0)).toBe(true); // interrupt_bitmap written
    const xsave2 = new Uint8Array(8192).fill(0xaa);
    v.getInto("KVM_GET_XSAVE2", xsave2);
    const size = k.checkExtension("XSAVE2");
    expect(xsave2.subarray(size).every((x) => x === 0xaa)).toBe(true);
    expect(() => v.getInto("KVM_GET_REGS", new Uint8Array(100))).toThrow(/writes 144 bytes/);
  });
});
