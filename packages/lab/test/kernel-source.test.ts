import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LabError } from "../src/errors.js";
import { compareVersions, localKernel, newestKernelPackage, parseKernelSpec } from "../src/kernel-source.js";

const dir = mkdtempSync(join(tmpdir(), "kvmx-lab-kernel-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const errorOf = (f: () => unknown): LabError => {
  try {
    f();
  } catch (e) {
    if (e instanceof LabError) return e;
    throw e;
  }
  throw new Error("expected a LabError");
};

function fakeBzImage(version: string): Buffer {
  const img = Buffer.alloc(2048);
  img.write("HdrS", 0x202, "latin1");
  img.writeUInt16LE(0x20f, 0x206);
  img.writeUInt16LE(0x100, 0x20e);
  img.write(`${version} (x@y) #1\0`, 0x300, "latin1");
  return img;
}

describe("--kernel", () => {
  it("6.1 and 6.12 are Debian series; a folder is a path; anything else is bad input", () => {
    expect(parseKernelSpec("6.1", dir)).toEqual({ kind: "debian", series: "6.1" });
    expect(parseKernelSpec("6.12", dir)).toEqual({ kind: "debian", series: "6.12" });
    expect(parseKernelSpec(".", dir)).toEqual({ kind: "path", dir });
    const e = errorOf(() => parseKernelSpec("6.7", dir));
    expect(e.category).toBe("bad-input");
    expect(e.message).toMatch(/--kernel 6\.7: not 6\.1 or 6\.12 and not a folder; pass 6\.1, 6\.12 or a folder/);
  });

  it("picks the newest package of a series, comparing numbers as numbers", () => {
    const names = ["linux-image-6.1.0-9-amd64", "linux-image-6.1.0-57-amd64", "linux-image-6.1.0-57-amd64-dbg", "linux-image-6.1.0-57-cloud-amd64",
      "linux-image-6.12.99+deb12-amd64", "linux-image-6.12.117+deb12-amd64", "linux-image-6.12.117+deb12-rt-amd64"];
    expect(newestKernelPackage("6.1", names)).toEqual({ pkg: "linux-image-6.1.0-57-amd64", version: "6.1.0-57-amd64" });
    expect(newestKernelPackage("6.12", names)).toEqual({ pkg: "linux-image-6.12.117+deb12-amd64", version: "6.12.117+deb12-amd64" });
    expect(newestKernelPackage("6.12", ["linux-image-amd64"])).toBeUndefined();
    expect(compareVersions("6.1.0-57", "6.1.0-9")).toBeGreaterThan(0);
  });

  it("a folder: the image's own version names its module tree; modules.dep must be there", () => {
    const k = join(dir, "k1");
    mkdirSync(join(k, "lib/modules/6.99.0-test"), { recursive: true });
    writeFileSync(join(k, "vmlinuz"), fakeBzImage("6.99.0-test"));
    writeFileSync(join(k, "lib/modules/6.99.0-test/modules.dep"), "");
    expect(localKernel(k)).toEqual({ version: "6.99.0-test", image: join(k, "vmlinuz"), modulesDir: join(k, "lib/modules/6.99.0-test"), source: k });
    rmSync(join(k, "lib/modules/6.99.0-test/modules.dep"));
    expect(errorOf(() => localKernel(k)).message).toMatch(/has no modules\.dep; run: depmod -b .* 6\.99\.0-test/);
    const empty = join(dir, "empty");
    mkdirSync(empty);
    expect(errorOf(() => localKernel(empty)).message).toMatch(/no kernel image/);
  });

  it("a Debian tree laid out as dpkg-deb -x leaves it (boot/vmlinuz-<version>) is found too", () => {
    const k = join(dir, "deb");
    mkdirSync(join(k, "boot"), { recursive: true });
    writeFileSync(join(k, "boot/vmlinuz-6.98.0-1-amd64"), fakeBzImage("6.98.0-1-amd64"));
    expect(localKernel(k)).toMatchObject({ version: "6.98.0-1-amd64", modulesDir: undefined });
  });
});
