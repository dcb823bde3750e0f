import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LabError } from "../src/errors.js";
import { findTool, isStaticElf, QEMU_OVERRIDE_ENV, requireTool } from "../src/host-tools.js";
import { CPU_MODEL, qemuArgs, qemuValue } from "../src/qemu-command.js";

const dir = mkdtempSync(join(tmpdir(), "kvmx-lab-qemu-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const boot = {
  qemu: "qemu-system-x86_64",
  cpu: "qemu64,+svm,+npt",
  memoryMiB: 2048,
  smp: 1,
  bootImage: "/c/vmlinux",
  initramfs: "/c/initramfs.cpio.gz",
  controlDir: "/tmp/x/ctl",
  sockets: { console: "/tmp/x/console.sock", stdout: "/tmp/x/out.sock", stderr: "/tmp/x/err.sock" },
};

describe("the QEMU command line", () => {
  it("shares / read-only and the control folder writable, three serial sockets, TCG, no network or display", () => {
    const a = qemuArgs(boot);
    const after = (flag: string) => a.filter((_, i) => a[i - 1] === flag);
    expect(after("-accel")).toEqual(["tcg"]);
    expect(after("-cpu")).toEqual(["qemu64,+svm,+npt"]);
    expect(after("-virtfs")).toEqual([
      "local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap,readonly=on",
      "local,path=/tmp/x/ctl,mount_tag=kvmxctl,security_model=none,multidevs=remap",
    ]);
    expect(after("-serial")).toEqual(["chardev:console", "chardev:out", "chardev:err"]);
    expect(a).toContain("-nodefaults");
    expect(a).toContain("-no-reboot");
    expect(a).not.toContain("-net");
    expect(after("-append")[0]).toMatch(/^console=ttyS0 panic=-1/);
  });

  it("an output folder becomes a third, writable share; commas in paths are doubled; more CPUs use multi-threaded TCG", () => {
    const a = qemuArgs({ ...boot, outDir: "/tmp/a,b", smp: 2 });
    expect(a).toContain("local,path=/tmp/a,,b,mount_tag=kvmxout,security_model=none,multidevs=remap");
    expect(a[a.indexOf("-accel") + 1]).toBe("tcg,thread=multi");
    expect(qemuValue("a,b,,c")).toBe("a,,b,,,,c");
  });

  it("CPU models are names with feature flags, nothing a shell or QEMU option could misread", () => {
    for (const ok of ["max", "qemu64,+svm,+npt", "EPYC-Rome", "max,-svm", "Skylake-Server-v4"]) expect(CPU_MODEL.test(ok)).toBe(true);
    for (const bad of ["", "max -m 1", "max;rm", ",max", "a\nb"]) expect(CPU_MODEL.test(bad)).toBe(false);
  });
});

describe("host tools", () => {
  it("tells a static binary from a dynamic one by its program headers", () => {
    const sh = findTool("sh")!;
    expect(isStaticElf(sh)).toBe(false);
    const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => spawnSync(p, ["true"]).status === 0);
    if (busybox && spawnSync("dpkg", ["-S", busybox], { encoding: "utf8" }).stdout?.includes("busybox-static")) expect(isStaticElf(busybox)).toBe(true);
  });

  it(`${QEMU_OVERRIDE_ENV} picks another QEMU; a missing one is 'unavailable' with the fix in the same line`, () => {
    const fake = join(dir, "my-qemu");
    writeFileSync(fake, "#!/bin/sh\n");
    chmodSync(fake, 0o755);
    expect(requireTool("qemu-system-x86_64", { PATH: "", [QEMU_OVERRIDE_ENV]: fake })).toBe(fake);
    let err: unknown;
    try {
      requireTool("qemu-system-x86_64", { PATH: "", [QEMU_OVERRIDE_ENV]: "/nonexistent/qemu" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LabError);
    expect((err as LabError).category).toBe("unavailable");
    expect((err as LabError).message).toMatch(/^KVMX_LAB_QEMU=\/nonexistent\/qemu: no such executable; unset KVMX_LAB_QEMU/);
    expect((err as LabError).message.includes("\n")).toBe(false);
  });
});
