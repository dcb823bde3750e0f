import { KVM_CAP, kvmUnavailableReason, type KvmCapName, type KvmProbe } from "@kvmx/uapi";
import { formatProbe, probeJson } from "../src/commands/probe.js";
import { toJson } from "../src/io.js";
import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

/** A probe result shaped like this machine's KVM per docs/facts.md#kvm-pvm-host (XCR0 0xe7, XSAVE2 4096). */
const sample: KvmProbe = {
  apiVersion: 12,
  caps: { ...(Object.fromEntries(Object.keys(KVM_CAP).map((k) => [k, 1])) as Record<KvmCapName, number>), XSAVE2: 4096, SYNC_REGS: 7, NR_VCPUS: 2, MAX_VCPUS: 1024, DEBUGREGS: 0 },
  supportedXcr0: 0xe7n,
  cpuid: [{ function: 0xd, index: 0, flags: 1, eax: 0xe7, ebx: 0x240, ecx: 0xa88, edx: 0, padding: [0, 0, 0] }],
};

describe("kvmx probe output", () => {
  it("JSON: schemaVersion 1, caps by name, supported XCR0 as a 0x string, CPUID entries without padding", () => {
    const j = JSON.parse(toJson(probeJson(sample, "/dev/kvm")));
    expect(j).toEqual({
      schemaVersion: 1,
      device: "/dev/kvm",
      apiVersion: 12,
      caps: expect.objectContaining({ XSAVE2: 4096, SYNC_REGS: 7, XSAVE: 1 }),
      supportedXcr0: "0xe7",
      cpuid: [{ function: 13, index: 0, flags: 1, eax: 0xe7, ebx: 0x240, ecx: 0xa88, edx: 0 }],
    });
  });
  it("human: capabilities with their meaning (flag, count, bytes, mask) and the CPUID table", () => {
    const text = formatProbe(sample, "/dev/kvm");
    expect(text).toContain("/dev/kvm: KVM API version 12");
    expect(text).toMatch(/KVM_CAP_XSAVE2\s+4096 bytes/);
    expect(text).toMatch(/KVM_CAP_SYNC_REGS\s+0x7/);
    expect(text).toMatch(/KVM_CAP_MAX_VCPUS\s+1024/);
    expect(text).toMatch(/KVM_CAP_DEBUGREGS\s+no/);
    expect(text).toMatch(/KVM_CAP_XCRS\s+yes/);
    expect(text).toContain("supported XCR0 (KVM_GET_SUPPORTED_CPUID 0xD.0 EDX:EAX): 0xe7");
    expect(text).toMatch(/0x0000000d\s*│\s*0\s*│\s*1\s*│\s*0x000000e7/);
  });
});

describe("kvmx probe", () => {
  it("exits 69 with the errno when the device is missing", async () => {
    const io = captureIo();
    expect(await main(["probe", "--device", "/nonexistent/kvm"], io)).toBe(69);
    expect(io.stderr()).toMatch(/open \/nonexistent\/kvm: ENOENT/);
    expect(io.stdout()).toBe("");
  });

  it("exits 70 when the node opens but is not KVM (every ioctl ENOTTY)", async () => {
    const io = captureIo();
    expect(await main(["probe", "--device", "/dev/null", "--json"], io)).toBe(70);
    expect(io.stderr()).toMatch(/KVM_GET_API_VERSION: ENOTTY/);
  });

  const reason = kvmUnavailableReason();
  it.runIf(reason !== undefined)("exits 69 on this machine, whose /dev/kvm is absent", async () => {
    console.warn(`kvmx probe: /dev/kvm unavailable here (${reason}), checking the exit code only`);
    const io = captureIo();
    expect(await main(["probe"], io)).toBe(69);
    expect(await main(["probe", "--json"], captureIo())).toBe(69);
  });

  it.runIf(reason === undefined)("--json reports API version, caps, supported XCR0 and CPUID", async () => {
    const io = captureIo();
    expect(await main(["probe", "--json"], io)).toBe(0);
    const j = JSON.parse(io.stdout());
    expect(j.schemaVersion).toBe(1);
    expect(j.apiVersion).toBe(12);
    expect(j.caps.XSAVE2).toBeGreaterThanOrEqual(4096);
    expect(j.caps.SYNC_REGS & 7).toBe(7);
    expect(j.supportedXcr0).toMatch(/^0x[0-9a-f]+$/);
    expect(j.cpuid.length).toBeGreaterThan(0);
    const human = captureIo();
    expect(await main(["probe"], human)).toBe(0);
    expect(human.stdout()).toMatch(/KVM API version 12/);
  });
});
