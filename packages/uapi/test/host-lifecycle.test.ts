import { describe, expect, it } from "vitest";
import { KvmError } from "../src/errors.js";
import { ERRNO } from "../src/errno.js";
import { KVM_EXIT } from "../src/exit-reasons.js";
import { HostKvm } from "../src/host/kvm.js";
import { zeroStruct } from "../src/structs/codec.js";
import { KVM_SYNC_X86_REGS } from "../src/sync-regs.js";
import { ioOutExit, SIM_PATH, SimulatedLibc } from "./simulated-libc.js";

/**
 * The real binding's classes (HostKvm/HostVm/HostVcpu, KvmFd, Mapping) over a simulated libc: every
 * fd and mapping they create must be released on every path, errors included.
 */
function setup() {
  const sim = new SimulatedLibc();
  const kvm = HostKvm.open(SIM_PATH, sim);
  return { sim, kvm };
}

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
};

describe("HostKvm/HostVm/HostVcpu resource handling", () => {
  it("closing the system fd closes every VM, vCPU, kvm_run mapping and guest memory", () => {
    const { sim, kvm } = setup();
    const vm1 = kvm.createVm();
    vm1.addMemory(0, 0n, 0x10000);
    vm1.addMemory(1, 0x100000n, 0x2000);
    vm1.createVcpu(0);
    vm1.createVcpu(1);
    kvm.createVm().createVcpu(0);
    expect(sim.fds.size).toBe(1 + 2 + 3);
    expect(sim.mappings.size).toBe(2 + 3);
    kvm.close();
    expect(sim.fds.size).toBe(0);
    expect(sim.mappings.size).toBe(0);
    // fds: 100 system, 101 vm1, 102/103 its vCPUs. vCPUs go before their VM fd, guest memory after it.
    const order = sim.calls.filter((c) => c.startsWith("close") || c.startsWith("munmap"));
    const vmClose = order.indexOf("close 101");
    expect(order.indexOf("close 102")).toBeLessThan(vmClose);
    expect(order.indexOf("close 103")).toBeLessThan(vmClose);
    expect(order.slice(vmClose + 1, vmClose + 3).every((c) => c.startsWith("munmap"))).toBe(true);
    expect(order.at(-1)).toBe("close 100");
  });

  it("closing a vCPU releases only its fd and kvm_run; closing twice is harmless", () => {
    const { sim, kvm } = setup();
    const vm = kvm.createVm();
    const vcpu = vm.createVcpu(0);
    const before = { fds: sim.fds.size, maps: sim.mappings.size };
    vcpu.close();
    vcpu.close();
    expect({ fds: sim.fds.size, maps: sim.mappings.size }).toEqual({ fds: before.fds - 1, maps: before.maps - 1 });
    expect(() => vcpu.getRegs()).toThrow(/closed/);
    expect(() => vcpu.syncRegs.valid).toThrow(/unmapped/);
    vm.close();
    expect(sim.fds.size).toBe(1);
    kvm.close();
  });

  it("a failed kvm_run mmap closes the new vCPU fd", () => {
    const { sim, kvm } = setup();
    const vm = kvm.createVm();
    sim.fail.set("mmap", ERRNO.ENOMEM);
    expect(thrown(() => vm.createVcpu(0))).toMatchObject({ errnoName: "ENOMEM", category: "internal" });
    expect([...sim.fds.values()].map((k) => k.kind).sort()).toEqual(["kvm", "vm"]);
    kvm.close();
    expect(sim.fds.size).toBe(0);
  });

  it("a kvm_run mapping smaller than struct kvm_run is refused and released", () => {
    const { sim, kvm } = setup();
    sim.mmapSize = 1024;
    const vm = kvm.createVm();
    expect(() => vm.createVcpu(0)).toThrow(/kvm_run: truncated/);
    expect(sim.mappings.size).toBe(0);
    expect(sim.fds.size).toBe(2);
    kvm.close();
  });

  it("run() after close() is a KvmError, never a read of unmapped memory", () => {
    const { kvm } = setup();
    const vcpu = kvm.createVm().createVcpu(0);
    vcpu.close();
    expect(() => vcpu.run()).toThrow(/unmapped/);
    kvm.close();
  });

  it("a rejected memory region unmaps its memory; a duplicate vCPU id leaks nothing", () => {
    const { sim, kvm } = setup();
    const vm = kvm.createVm();
    sim.fail.set("KVM_SET_USER_MEMORY_REGION", ERRNO.EINVAL);
    expect(thrown(() => vm.addMemory(0, 0n, 0x4000))).toMatchObject({ errnoName: "EINVAL", category: "bad-input" });
    expect(sim.mappings.size).toBe(0);
    vm.createVcpu(0);
    expect(thrown(() => vm.createVcpu(0))).toMatchObject({ errnoName: "EEXIST" });
    expect(sim.fds.size).toBe(3);
    expect(() => vm.addMemory(0, 0n, 100)).toThrow(/page multiples/);
    kvm.close();
    expect(sim.fds.size + sim.mappings.size).toBe(0);
  });

  it("when one release step fails, the others still run and the error surfaces", () => {
    const { sim, kvm } = setup();
    const vm = kvm.createVm();
    vm.addMemory(0, 0n, 0x4000);
    vm.createVcpu(0);
    sim.fail.set("close", ERRNO.EIO); // the vCPU fd's close, the first close
    expect(thrown(() => vm.close())).toMatchObject({ errnoName: "EIO" });
    expect(sim.mappings.size).toBe(0);
    expect([...sim.fds.values()].map((k) => k.kind)).toEqual(["kvm"]);
    kvm.close();
  });

  it("guest memory reads and writes stay inside the region and stop after close", () => {
    const { kvm } = setup();
    const vm = kvm.createVm();
    const mem = vm.addMemory(0, 0x100000n, 0x2000);
    mem.write(0x101ffen, Uint8Array.of(1, 2));
    expect([...mem.read(0x101ffen, 2)]).toEqual([1, 2]);
    expect(mem.bytes[0x1ffe]).toBe(1);
    expect(() => mem.write(0x101fffn, Uint8Array.of(1, 2))).toThrow(/outside the region/);
    expect(() => mem.read(0xff000n, 1)).toThrow(KvmError);
    vm.close();
    expect(() => mem.bytes).toThrow(/unmapped/);
    kvm.close();
  });
});

describe("HostVcpu ioctls and kvm_run through the binding", () => {
  it("run() decodes the exit KVM wrote into kvm_run; EINTR is an intr exit; other errors throw", () => {
    const { sim, kvm } = setup();
    const vcpu = kvm.createVm().createVcpu(0);
    sim.exits.push(ioOutExit(0x10, [7]), (run) => void new DataView(run.buffer).setUint32(8, KVM_EXIT.HLT, true), () => ERRNO.EINTR, () => ERRNO.EFAULT);
    const e = vcpu.run();
    expect(e).toMatchObject({ kind: "io", port: 0x10, direction: "out" });
    if (e.kind === "io") expect([...e.data]).toEqual([7]);
    expect(vcpu.run()).toEqual({ kind: "hlt", exitReason: 5 });
    expect(vcpu.run()).toEqual({ kind: "intr", exitReason: KVM_EXIT.INTR });
    expect(thrown(() => vcpu.run())).toMatchObject({ operation: "KVM_RUN", errnoName: "EFAULT" });
    kvm.close();
  });

  it("syncRegs reads and writes kvm_run's masks and s.regs in the mapping KVM shares", () => {
    const { kvm } = setup();
    const vcpu = kvm.createVm().createVcpu(0);
    vcpu.syncRegs.valid = KVM_SYNC_X86_REGS;
    vcpu.syncRegs.dirty = KVM_SYNC_X86_REGS;
    const run = vcpu.kvmRun;
    expect(new DataView(run.buffer).getBigUint64(288, true)).toBe(1n);
    expect(new DataView(run.buffer).getBigUint64(296, true)).toBe(1n);
    vcpu.syncRegs.write({ regs: { ...zeroStruct("kvm_regs"), rbx: 9n } });
    expect(vcpu.syncRegs.read().regs.rbx).toBe(9n);
    expect(new DataView(run.buffer).getBigUint64(304 + 8, true)).toBe(9n);
    kvm.close();
  });

  it("state ioctls pass exact struct buffers; GET after SET returns what SET wrote", () => {
    const { sim, kvm } = setup();
    const vcpu = kvm.createVm().createVcpu(0);
    const regs = { ...zeroStruct("kvm_regs"), rip: 0xfff0n, r15: 3n };
    vcpu.setRegs(regs);
    expect(vcpu.getRegs()).toEqual(regs);
    vcpu.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: 7n }] });
    expect(vcpu.getXcrs().xcrs).toEqual([{ xcr: 0, reserved: 0, value: 7n }]);
    const s = vcpu.getSregs();
    vcpu.setSregs({ ...s, efer: 0x500n });
    expect(vcpu.getSregs().efer).toBe(0x500n);
    vcpu.setCpuid2([{ function: 0xd, index: 0, flags: 1, eax: 0xe7, ebx: 0, ecx: 0, edx: 0, padding: [0, 0, 0] }]);
    expect(sim.calls).toContain("KVM_SET_CPUID2 48");
    expect(sim.calls).toContain("KVM_SET_REGS 144");
    expect(sim.calls).toContain("KVM_GET_SREGS 312");
    expect(sim.calls).toContain("KVM_SET_XCRS 392");
    kvm.close();
  });

  it("XSAVE2 buffers follow the VM's KVM_CAP_XSAVE2, and SET_XSAVE pads a 4096-byte image to it", () => {
    const { sim, kvm } = setup();
    sim.xsave2Size = 8192;
    const vcpu = kvm.createVm().createVcpu(0);
    const img = new Uint8Array(4096).fill(5);
    vcpu.setXsave(img);
    expect(sim.calls).toContain("KVM_SET_XSAVE 8192");
    const back = vcpu.getXsave2();
    expect(back.byteLength).toBe(8192);
    expect(back.subarray(0, 4096)).toEqual(img);
    expect(back[4096]).toBe(0);
    expect(() => vcpu.setXsave(new Uint8Array(100))).toThrow(KvmError);
    expect(() => vcpu.getXsave2(1024)).toThrow(/below 4096/);
    kvm.close();
  });

  it("getMsrs returns only the entries KVM filled; getSupportedCpuid grows its buffer on E2BIG", () => {
    const { sim, kvm } = setup();
    const vcpu = kvm.createVm().createVcpu(0);
    expect(vcpu.getMsrs([0x10, 0x174])).toEqual([{ index: 0x10, reserved: 0, data: 0xabcn }]);
    expect(vcpu.setMsrs([{ index: 0x174, reserved: 0, data: 1n }])).toBe(1);
    const cpuid = kvm.getSupportedCpuid();
    expect(cpuid).toHaveLength(300);
    expect(cpuid[299]?.function).toBe(299);
    expect(sim.calls.filter((c) => c.startsWith("KVM_GET_SUPPORTED_CPUID"))).toEqual([
      `KVM_GET_SUPPORTED_CPUID ${8 + 256 * 40}`,
      `KVM_GET_SUPPORTED_CPUID ${8 + 512 * 40}`,
    ]);
    sim.cpuidEntries = 100_000;
    expect(thrown(() => kvm.getSupportedCpuid())).toMatchObject({ errnoName: "E2BIG" });
    kvm.close();
  });
});
