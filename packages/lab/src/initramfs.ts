import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { LabError } from "./errors.js";
import { guestInitScript, INITRAMFS_MODULES } from "./guest-init.js";
import { findStaticBusybox, requireTool } from "./host-tools.js";
import { extractPvhKernel } from "./kernel-image.js";
import { LAB_MODULES, moduleLoadOrder, parseModuleIndex } from "./kernel-modules.js";
import type { KernelTree } from "./kernel-source.js";
import type { Progress } from "./progress.js";

/** Bumped when the initramfs layout changes in a way its inputs do not show. */
const INITRAMFS_FORMAT = 1;

/** What a boot needs from the cache: the kernel to pass to -kernel and the initramfs. */
export interface BootImages {
  readonly kernel: KernelTree;
  /** An uncompressed vmlinux with a PVH entry (fast boot), or the bzImage itself. */
  readonly bootImage: string;
  readonly initramfs: string;
  /** True when the initramfs came from the cache unchanged. */
  readonly reused: boolean;
}

function moduleFiles(kernel: KernelTree): string[] {
  if (!kernel.modulesDir) return [];
  const dep = readFileSync(join(kernel.modulesDir, "modules.dep"), "utf8");
  const builtinFile = join(kernel.modulesDir, "modules.builtin");
  const builtin = existsSync(builtinFile) ? readFileSync(builtinFile, "utf8") : "";
  return moduleLoadOrder(parseModuleIndex(dep, builtin), LAB_MODULES);
}

/** Everything the image is made of, hashed: a change to any input gives a new file name. */
function inputKey(kernel: KernelTree, busybox: string, modules: readonly string[]): string {
  const h = createHash("sha256");
  const stamp = (p: string) => {
    const s = statSync(p);
    h.update(`${p}\0${s.size}\0${s.mtimeMs}\0`);
  };
  h.update(`format ${INITRAMFS_FORMAT}\0${kernel.version}\0${guestInitScript()}\0`);
  stamp(busybox);
  for (const m of modules) stamp(join(kernel.modulesDir!, m));
  return h.digest("hex").slice(0, 16);
}

function unpackModule(src: string, dest: string): void {
  if (src.endsWith(".ko")) return copyFileSync(src, dest);
  const tool = src.endsWith(".xz") ? "xz" : src.endsWith(".zst") ? "zstd" : undefined;
  if (!tool) throw new LabError(`${src}: unknown module compression`, undefined, "internal");
  const r = spawnSync(requireTool(tool), ["-dc", src], { maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new LabError(`${tool} -dc ${src} failed: ${String(r.stderr).trim()}`, undefined, "internal");
  writeFileSync(dest, r.stdout);
}

/**
 * The boot images for `kernel`, built into the cache when absent: a PVH vmlinux unpacked from the
 * bzImage, and an initramfs (gzip'd newc cpio) with a static busybox, the /init script and the
 * kvm, kvm_amd, virtio-pci, 9p and overlay modules in load order (uncompressed, so busybox insmod
 * loads them on any kernel).
 */
export function bootImages(kernel: KernelTree, cacheDir: string, progress: Progress): BootImages {
  const busybox = findStaticBusybox();
  if (!busybox) requireTool("busybox");
  const modules = moduleFiles(kernel);
  const key = inputKey(kernel, busybox!, modules);
  const dir = join(cacheDir, "boot", `${kernel.version}-${key}`);
  const initramfs = join(dir, "initramfs.cpio.gz");
  const vmlinux = join(dir, "vmlinux");
  const noPvh = join(dir, "no-pvh");
  if (existsSync(initramfs) && (existsSync(vmlinux) || existsSync(noPvh))) {
    return { kernel, bootImage: existsSync(vmlinux) ? vmlinux : kernel.image, initramfs, reused: true };
  }
  mkdirSync(join(cacheDir, "boot"), { recursive: true });
  const work = mkdtempSync(join(cacheDir, "boot", `.build-${kernel.version}-`));
  try {
    progress(`building the initramfs for ${kernel.version} (${modules.length} modules)`);
    const root = join(work, "root");
    for (const d of ["bin", "dev", "proc", "sys", "mnt/host", "mnt/root", "mnt/upper", "mnt/ctl", INITRAMFS_MODULES.slice(1)]) {
      mkdirSync(join(root, d), { recursive: true });
    }
    copyFileSync(busybox!, join(root, "bin", "busybox"));
    chmodSync(join(root, "bin", "busybox"), 0o755);
    symlinkSync("busybox", join(root, "bin", "sh"));
    writeFileSync(join(root, "init"), guestInitScript(), { mode: 0o755 });
    const names = modules.map((m, i) => `${String(i).padStart(2, "0")}-${m.slice(m.lastIndexOf("/") + 1).replace(/\.(xz|zst)$/, "")}`);
    modules.forEach((m, i) => unpackModule(join(kernel.modulesDir!, m), join(root, INITRAMFS_MODULES.slice(1), names[i]!)));
    writeFileSync(join(root, INITRAMFS_MODULES.slice(1), "load-order"), names.map((n) => `${n}\n`).join(""));
    const list = spawnSync("find", [".", "-print0"], { cwd: root, maxBuffer: 16 << 20 });
    const files = list.stdout.toString("latin1").split("\0").filter(Boolean).sort().join("\0") + "\0";
    const cpio = spawnSync(requireTool("cpio"), ["-o", "-H", "newc", "--null", "--quiet", "-R", "0:0", "--reproducible"], {
      cwd: root,
      input: Buffer.from(files, "latin1"),
      maxBuffer: 1 << 30,
    });
    if (cpio.status !== 0) throw new LabError(`cpio failed: ${String(cpio.stderr).trim()}`, undefined, "internal");
    writeFileSync(join(work, "initramfs.cpio.gz"), gzipSync(cpio.stdout, { level: 1 }));
    progress(`unpacking the kernel for a direct (PVH) boot`);
    if (!extractPvhKernel(kernel.image, join(work, "vmlinux"))) writeFileSync(join(work, "no-pvh"), "boots as a bzImage\n");
    rmSync(root, { recursive: true });
    try {
      renameSync(work, dir);
    } catch (err) {
      // a parallel build of the same inputs finished first; both are identical
      if (!existsSync(initramfs)) throw err;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { kernel, bootImage: existsSync(vmlinux) ? vmlinux : kernel.image, initramfs, reused: false };
}
