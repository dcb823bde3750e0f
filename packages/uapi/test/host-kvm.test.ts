import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { KvmError } from "../src/errors.js";
import { closeAll } from "../src/host/close-all.js";
import { KvmFd } from "../src/host/fd-ioctl.js";
import { HostKvm, kvmUnavailableReason, openKvm } from "../src/host/kvm.js";
import { libc, MAP_ANONYMOUS, MAP_PRIVATE, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE } from "../src/host/libc.js";
import { Mapping } from "../src/host/mapping.js";

const openFds = () => readdirSync("/proc/self/fd").length;

describe("the real binding without a KVM device", () => {
  it("koffi loads libc here", () => {
    expect(typeof libc().open).toBe("function");
  });

  it("a missing device node is KvmError ENOENT, category unavailable", () => {
    const err = (() => {
      try {
        openKvm("/nonexistent/kvm");
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KvmError);
    expect(err).toMatchObject({ errnoName: "ENOENT", errno: 2, category: "unavailable" });
    expect(kvmUnavailableReason("/nonexistent/kvm")).toMatch(/ENOENT/);
  });

  it("kvmUnavailableReason for /dev/kvm agrees with whether it opens", () => {
    const reason = kvmUnavailableReason();
    if (reason === undefined) {
      const kvm = HostKvm.open();
      expect(kvm.apiVersion()).toBe(12);
      kvm.close();
    } else {
      expect(() => HostKvm.open()).toThrow(KvmError);
      console.warn(`/dev/kvm unavailable here: ${reason}`);
    }
  });

  it("an ioctl the device does not know fails with ENOTTY as an internal KvmError, and close() releases the fd", () => {
    // /dev/null opens like a device but answers every ioctl with ENOTTY: the whole ioctl path runs for real
    const before = openFds();
    const kvm = HostKvm.open("/dev/null");
    expect(openFds()).toBe(before + 1);
    let err: unknown;
    try {
      kvm.apiVersion();
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ errnoName: "ENOTTY", category: "internal", operation: "KVM_GET_API_VERSION" });
    expect(() => kvm.getSupportedCpuid()).toThrow(/KVM_GET_SUPPORTED_CPUID: ENOTTY/);
    expect(() => kvm.createVm()).toThrow(KvmError);
    kvm.close();
    kvm.close(); // idempotent
    expect(openFds()).toBe(before);
    expect(() => kvm.apiVersion()).toThrow(/closed/);
  });

  it("a pointer ioctl on a real fd reports the kernel's errno", () => {
    const fd = libc().open("/dev/null", O_RDWR | O_CLOEXEC, 0);
    const f = new KvmFd(fd, "/dev/null", libc());
    expect(() => f.ioctlPtr("KVM_SET_XCRS", new Uint8Array(392))).toThrow(/KVM_SET_XCRS: ENOTTY/);
    expect(f.tryIoctlPtr("KVM_GET_REGS", new Uint8Array(144))).toEqual({ result: -1, errno: 25 });
    f.close();
    expect(f.closed).toBe(true);
  });

  it("a request number with bit 31 set, and a subarray argument, reach the kernel intact (TIOCGPTN on /dev/ptmx)", () => {
    // TIOCGPTN = _IOR('T', 0x30, unsigned int) = 0x80045430: the kernel writes the pty number through the pointer
    const fd = libc().open("/dev/ptmx", O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
      console.warn(`/dev/ptmx unavailable (errno ${libc().errno()}); skipping the ioctl-number check`);
      return;
    }
    try {
      const buf = new Uint8Array(8).fill(0xff);
      expect(libc().ioctlPtr(fd, 0x80045430, buf.subarray(4))).toBe(0);
      expect([...buf.subarray(0, 4)]).toEqual([0xff, 0xff, 0xff, 0xff]);
      expect(new DataView(buf.buffer).getUint32(4, true)).toBeLessThan(0x10000);
    } finally {
      libc().close(fd);
    }
  });

  it("a Mapping is writable, and after unmap it is gone from /proc/self/maps and its view refuses access", () => {
    const m = Mapping.map(libc(), "test", 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    m.bytes[8191] = 7;
    expect(m.bytes[8191]).toBe(7);
    const start = m.address.toString(16);
    const mapped = () => readFileSync("/proc/self/maps", "utf8").split("\n").some((l) => l.startsWith(`${start}-`));
    expect(mapped()).toBe(true);
    m.unmap();
    expect(mapped()).toBe(false);
    expect(() => m.bytes).toThrow(KvmError);
    m.unmap();
  });

  it("a failed mmap is a KvmError with the errno", () => {
    expect(() => Mapping.map(libc(), "zero", 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1)).toThrow(/mmap zero: EINVAL/);
  });
});

describe("closeAll", () => {
  it("runs every step even when one throws, then rethrows the first failure", () => {
    const ran: number[] = [];
    const boom = new KvmError("x", 5, "internal");
    expect(() =>
      closeAll([
        () => ran.push(1),
        () => {
          throw boom;
        },
        () => ran.push(3),
      ]),
    ).toThrow(boom);
    expect(ran).toEqual([1, 3]);
  });
});
