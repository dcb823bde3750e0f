import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { labUnavailableReason, QEMU_OVERRIDE_ENV } from "@kvmx/lab";
import { LAB_QEMU_CPU_ENV } from "@kvmx/uapi";
import { LAB_ENV } from "@kvmx/lab";
import { afterEach, describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

/**
 * `kvmx lab`: usage and unavailability errors need no QEMU; the rest boots the real lab and skips,
 * saying why, where it is not set up (`kvmx lab setup`). `lab probe` runs the built kvmx inside.
 */
const saved = process.env[QEMU_OVERRIDE_ENV];
afterEach(() => {
  if (saved === undefined) delete process.env[QEMU_OVERRIDE_ENV];
  else process.env[QEMU_OVERRIDE_ENV] = saved;
});

describe("kvmx lab, without booting", () => {
  it("exec without a command is a usage error (2); a bad --cpu or --kernel is bad input (65)", async () => {
    expect(await main(["lab", "exec"], captureIo())).toBe(2);
    const cpu = captureIo();
    expect(await main(["lab", "exec", "--cpu", "max;reboot", "--", "true"], cpu)).toBe(65);
    expect(cpu.stderr()).toMatch(/--cpu "max;reboot" is not a QEMU CPU model/);
    const kernel = captureIo();
    expect(await main(["lab", "exec", "--kernel", "5.10", "--", "true"], kernel)).toBe(65);
    expect(kernel.stderr()).toMatch(/--kernel 5\.10: not 6\.1 or 6\.12 and not a folder/);
    expect(await main(["lab", "exec", "--memory", "lots", "--", "true"], captureIo())).toBe(2);
  });

  it("a missing QEMU: one line with the fix, exit 69", async () => {
    process.env[QEMU_OVERRIDE_ENV] = "/nonexistent/qemu-system-x86_64";
    const io = captureIo();
    expect(await main(["lab", "exec", "--", "true"], io)).toBe(69);
    expect(io.stderr()).toBe(`kvmx: ${QEMU_OVERRIDE_ENV}=/nonexistent/qemu-system-x86_64: no such executable; unset ${QEMU_OVERRIDE_ENV} or point it at a qemu-system-x86_64\n`);
  });

  it("the lab tells programs its CPU model under the name the uAPI package reads", () => {
    expect(LAB_ENV.qemuCpu).toBe(LAB_QEMU_CPU_ENV);
  });
});

const reason = labUnavailableReason();
if (reason) console.warn(`kvmx lab boot tests skipped: ${reason}`);
const built = existsSync(fileURLToPath(new URL("../dist/main.js", import.meta.url)));

describe.skipIf(reason !== undefined)("kvmx lab (boots QEMU)", () => {
  it("exec streams the command's output and exits with its status", async () => {
    const io = captureIo();
    expect(await main(["lab", "exec", "--quiet", "--", "sh", "-c", "echo out; echo err >&2; exit 5"], io)).toBe(5);
    expect(io.stdoutBytes().toString()).toBe("out\n");
    expect(io.stderr()).toBe("err\n");
  }, 300_000);

  it.skipIf(!built)("probe --json is kvmx probe inside the lab, with the lab's kernel and CPU", async () => {
    const io = captureIo();
    expect(await main(["lab", "probe", "--json", "--quiet"], io)).toBe(0);
    const j = JSON.parse(io.stdout());
    expect(j.lab.kernel).toMatch(/^6\.12\./);
    expect(j.lab.cpuModel).toMatch(/QEMU/);
    expect(j.caps.XSAVE2).toBeGreaterThanOrEqual(4096);
    expect(j.cpuid.length).toBeGreaterThan(10);
    expect(BigInt(j.supportedXcr0) & 3n).toBe(3n);
  }, 300_000);
});
