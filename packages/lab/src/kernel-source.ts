import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { LabError } from "./errors.js";
import { findTool, requireTool } from "./host-tools.js";
import type { Progress } from "./progress.js";

/**
 * Which kernel the lab boots: a Debian kernel series (the newest `linux-image-<series>…-amd64` of the
 * host's apt sources, fetched without installing it) or a folder holding a kernel image and its
 * modules (e.g. a self-built kernel: `make bzImage modules_install INSTALL_MOD_PATH=DIR`).
 */
export type KernelSpec = { readonly kind: "debian"; readonly series: DebianSeries } | { readonly kind: "path"; readonly dir: string };

export const DEBIAN_SERIES = {
  // bookworm's own kernel
  "6.1": /^linux-image-(6\.1\.0-(\d+))-amd64$/,
  // the 6.12 kernel bookworm ships in main (6.12.N+deb12)
  "6.12": /^linux-image-(6\.12\.(\d+)\+deb\d+)-amd64$/,
} as const;
export type DebianSeries = keyof typeof DEBIAN_SERIES;
export const DEFAULT_KERNEL: DebianSeries = "6.12";

/** A kernel ready to boot: its bzImage, the module tree (lib/modules/<version>) and where it came from. */
export interface KernelTree {
  readonly version: string;
  readonly image: string;
  /** lib/modules/<version> with modules.dep, or undefined for a kernel with everything built in. */
  readonly modulesDir: string | undefined;
  /** "Debian linux-image-6.12.117+deb12-amd64 6.12.117-1~deb12u1" or the folder given. */
  readonly source: string;
}

export function kernelSpecText(s: KernelSpec): string {
  return s.kind === "debian" ? s.series : s.dir;
}

export function parseKernelSpec(text: string, cwd: string): KernelSpec {
  if (Object.hasOwn(DEBIAN_SERIES, text)) return { kind: "debian", series: text as DebianSeries };
  const dir = resolve(cwd, text);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new LabError(`--kernel ${text}: not ${Object.keys(DEBIAN_SERIES).join(" or ")} and not a folder`, "pass 6.1, 6.12 or a folder with a vmlinuz and its lib/modules", "bad-input");
  }
  return { kind: "path", dir };
}

/** The version string a bzImage carries (boot protocol: kernel_version at 0x20e, offset from 0x200). */
export function bzImageVersion(image: Buffer): string | undefined {
  if (image.length < 0x210 || image.toString("latin1", 0x202, 0x206) !== "HdrS") return undefined;
  const at = 0x200 + image.readUInt16LE(0x20e);
  const end = image.indexOf(0, at);
  if (end < 0 || end - at > 512) return undefined;
  return image.toString("latin1", at, end).split(" ")[0] || undefined;
}

const IMAGE_NAMES = ["vmlinuz", "bzImage", "arch/x86/boot/bzImage"];

/** Finds the kernel image and its modules in a folder (a dpkg-deb -x tree, an install dir, a build tree). */
export function localKernel(dir: string): KernelTree {
  const candidates = [
    ...IMAGE_NAMES.map((n) => join(dir, n)),
    ...["", "boot"].flatMap((sub) => {
      const d = join(dir, sub);
      return existsSync(d) ? readdirSync(d).filter((f) => f.startsWith("vmlinuz-")).sort().map((f) => join(d, f)) : [];
    }),
  ];
  const image = candidates.find((p) => existsSync(p) && statSync(p).isFile());
  if (!image) throw new LabError(`${dir}: no kernel image (looked for vmlinuz, bzImage, vmlinuz-*, boot/vmlinuz-*)`, "put the bzImage there as vmlinuz", "bad-input");
  const version = bzImageVersion(readFileSync(image));
  if (!version) throw new LabError(`${image}: not an x86 bzImage`, "point --kernel at a folder with a bzImage (vmlinuz)", "bad-input");
  const modulesDir = join(dir, "lib", "modules", version);
  if (!existsSync(modulesDir)) return { version, image, modulesDir: undefined, source: dir };
  if (!existsSync(join(modulesDir, "modules.dep"))) {
    throw new LabError(`${modulesDir} has no modules.dep`, `run: depmod -b ${dir} ${version}`, "bad-input");
  }
  return { version, image, modulesDir, source: dir };
}

/** Compares dotted/dashed version numbers numerically ("6.1.0-57" > "6.1.0-9"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-+~]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  const pb = b.split(/[.\-+~]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? -1;
    const y = pb[i] ?? -1;
    if (x === y) continue;
    if (typeof x === "number" && typeof y === "number") return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

/** The newest package of a series among apt's package names. */
export function newestKernelPackage(series: DebianSeries, names: readonly string[]): { pkg: string; version: string } | undefined {
  const re = DEBIAN_SERIES[series];
  let best: { pkg: string; version: string } | undefined;
  for (const n of names) {
    const m = re.exec(n.trim());
    if (m && (!best || compareVersions(m[1]!, best.version.replace(/-amd64$/, "")) > 0)) best = { pkg: n.trim(), version: `${m[1]}-amd64` };
  }
  return best;
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });
  return { ok: r.status === 0, out: r.error ? r.error.message : `${r.stdout}${r.stderr}` };
}

const tail = (s: string): string => s.trim().split("\n").slice(-4).join("\n");

function aptKernelNames(series: DebianSeries): string[] {
  const r = run("apt-cache", ["pkgnames", `linux-image-${series}`]);
  return r.ok ? r.out.split("\n").filter(Boolean) : [];
}

interface DebianRecord {
  version: string;
  pkg: string;
  debVersion: string;
}

/**
 * The Debian kernel of `series`, from the cache, else fetched: `apt-get download` the newest
 * linux-image package, `dpkg-deb -x` it into the cache, `depmod -b` its modules (nothing is
 * installed on the host). Progress lines go to `progress`.
 */
export function debianKernel(series: DebianSeries, cacheDir: string, progress: Progress, allowFetch = true): KernelTree {
  const kernels = join(cacheDir, "kernels");
  const recordFile = join(kernels, `debian-${series}.json`);
  const treeOf = (r: DebianRecord): KernelTree | undefined => {
    const root = join(kernels, r.version);
    const image = join(root, "boot", `vmlinuz-${r.version}`);
    const modulesDir = join(root, "lib", "modules", r.version);
    if (!existsSync(image) || !existsSync(join(modulesDir, "modules.dep"))) return undefined;
    return { version: r.version, image, modulesDir, source: `Debian ${r.pkg} ${r.debVersion}` };
  };
  if (existsSync(recordFile)) {
    const cached = treeOf(JSON.parse(readFileSync(recordFile, "utf8")) as DebianRecord);
    if (cached) return cached;
  }
  if (!allowFetch) throw new LabError(`the Debian ${series} kernel is not in the lab cache (${kernels})`, `run \`kvmx lab setup --kernel ${series}\``);
  for (const t of ["apt-get", "apt-cache", "dpkg-deb"]) {
    if (!findTool(t)) throw new LabError(`${t} not found: fetching a Debian kernel needs apt`, "pass --kernel PATH (a folder with a vmlinuz and its lib/modules)");
  }
  let names = aptKernelNames(series);
  if (!newestKernelPackage(series, names) && process.getuid?.() === 0) {
    progress("refreshing the package lists (apt-get update)");
    run("apt-get", ["update", "-q"]);
    names = aptKernelNames(series);
  }
  const found = newestKernelPackage(series, names);
  if (!found) {
    throw new LabError(
      `no linux-image-${series}…-amd64 package in the apt sources`,
      "add Debian bookworm (main and bookworm-security) to the apt sources and run apt-get update, or pass --kernel PATH",
    );
  }
  const show = run("apt-cache", ["show", "--no-all-versions", found.pkg]).out;
  const debVersion = /^Version: (.+)$/m.exec(show)?.[1] ?? "?";
  const size = Number(/^Size: (\d+)$/m.exec(show)?.[1] ?? 0);
  mkdirSync(kernels, { recursive: true });
  const work = join(kernels, `.fetch-${found.version}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    progress(`downloading ${found.pkg} ${debVersion}${size ? ` (${Math.round(size / 1e6)} MB)` : ""}`);
    // as root, apt's sandbox user could not write into the cache: download as root
    const sandbox = process.getuid?.() === 0 ? ["-o", "APT::Sandbox::User=root"] : [];
    const dl = run("apt-get", ["download", "-q", ...sandbox, found.pkg], { cwd: work });
    const deb = readdirSync(work).find((f) => f.endsWith(".deb"));
    if (!dl.ok || !deb) throw new LabError(`apt-get download ${found.pkg} failed:\n${tail(dl.out)}`, "check the network and the apt sources, or pass --kernel PATH");
    progress(`unpacking ${deb}`);
    const tree = join(work, "tree");
    const x = run("dpkg-deb", ["-x", join(work, deb), tree]);
    if (!x.ok) throw new LabError(`dpkg-deb -x ${deb} failed:\n${tail(x.out)}`, undefined, "internal");
    rmSync(join(work, deb));
    progress(`indexing modules (depmod ${found.version})`);
    const d = run(requireTool("depmod"), ["-b", tree, found.version]);
    if (!d.ok) throw new LabError(`depmod -b ${tree} ${found.version} failed:\n${tail(d.out)}`, undefined, "internal");
    const dest = join(kernels, found.version);
    if (!existsSync(dest)) {
      try {
        renameSync(tree, dest);
      } catch (err) {
        // a parallel setup got there first: its tree is the same package
        if (!existsSync(join(dest, "boot"))) throw err;
      }
    }
    const record: DebianRecord = { version: found.version, pkg: found.pkg, debVersion };
    writeFileSync(`${recordFile}.tmp-${process.pid}`, JSON.stringify(record, null, 2) + "\n");
    renameSync(`${recordFile}.tmp-${process.pid}`, recordFile);
    const t = treeOf(record);
    if (!t) throw new LabError(`${found.pkg} did not contain boot/vmlinuz-${found.version} and its modules`, undefined, "internal");
    return t;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function resolveKernel(spec: KernelSpec, cacheDir: string, progress: Progress, allowFetch = true): KernelTree {
  return spec.kind === "debian" ? debianKernel(spec.series, cacheDir, progress, allowFetch) : localKernel(spec.dir);
}
