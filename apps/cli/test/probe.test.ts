import { kvmUnavailableReason } from "@kvmx/uapi";
import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

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
