import { spawnSync } from "node:child_process";
import { accessSync, constants, openSync, readSync, closeSync } from "node:fs";
import { delimiter, join } from "node:path";
import { LabError } from "./errors.js";

/**
 * The host programs the lab needs and the Debian packages that provide them. `when` says which step
 * needs a tool, so a missing one is named with the step that cannot run without it.
 */
export interface HostTool {
  readonly tool: string;
  readonly debianPackage: string;
  readonly when: string;
}

export const LAB_TOOLS: readonly HostTool[] = [
  { tool: "qemu-system-x86_64", debianPackage: "qemu-system-x86", when: "to boot the lab" },
  { tool: "busybox", debianPackage: "busybox-static", when: "for the lab's /init (a static build)" },
  { tool: "cpio", debianPackage: "cpio", when: "to pack the initramfs" },
  { tool: "depmod", debianPackage: "kmod", when: "to index a kernel package's modules" },
  { tool: "xz", debianPackage: "xz-utils", when: "to unpack xz-compressed kernels and modules" },
  { tool: "zstd", debianPackage: "zstd", when: "to unpack zstd-compressed kernels" },
];

/** The shell line that installs every lab tool by hand. */
export const INSTALL_FIX = `apt-get install -y ${LAB_TOOLS.map((t) => t.debianPackage).join(" ")}`;

/** sbin folders hold depmod on Debian but are not on every user's PATH. */
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of `name` on PATH (or the sbin folders), or undefined. */
export function findTool(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const d of dirs) {
    const p = join(d, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/** Reads the ELF program headers: a binary without PT_INTERP needs no dynamic loader (it is static). */
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false;
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

/** busybox-static installs /bin/busybox; a dynamic busybox (package busybox) cannot run as /init. */
export function findStaticBusybox(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const p of [findTool("busybox", env), "/bin/busybox", "/usr/bin/busybox"]) {
    if (p && isExecutable(p) && isStaticElf(p)) return p;
  }
  return undefined;
}

/** The lab tools that are absent here. */
export function missingTools(env: NodeJS.ProcessEnv = process.env): HostTool[] {
  return LAB_TOOLS.filter((t) => (t.tool === "busybox" ? !findStaticBusybox(env) : !findTool(t.tool, env)));
}

/** KVMX_LAB_QEMU names another QEMU binary (a path or a name on PATH) instead of qemu-system-x86_64. */
export const QEMU_OVERRIDE_ENV = "KVMX_LAB_QEMU";

/** Where an exact tool must exist, or a LabError that names the package (exit 69). */
export function requireTool(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const t = LAB_TOOLS.find((x) => x.tool === name);
  const override = name === "qemu-system-x86_64" ? env[QEMU_OVERRIDE_ENV] : undefined;
  if (override) {
    const p = override.includes("/") ? (isExecutable(override) ? override : undefined) : findTool(override, env);
    if (p) return p;
    throw new LabError(`${QEMU_OVERRIDE_ENV}=${override}: no such executable`, `unset ${QEMU_OVERRIDE_ENV} or point it at a qemu-system-x86_64`);
  }
  const path = name === "busybox" ? findStaticBusybox(env) : findTool(name, env);
  if (path) return path;
  const pkg = t ? ` (Debian package ${t.debianPackage}, needed ${t.when})` : "";
  throw new LabError(`${name} not found${pkg}`, "run `kvmx lab setup`, which installs it");
}

export interface InstallLog {
  (line: string): void;
}

function runApt(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync("apt-get", args, {
    encoding: "utf8",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) return { ok: false, output: r.error.message };
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

const lastLines = (s: string, n: number): string => s.trim().split("\n").slice(-n).join("\n");

/**
 * Installs the Debian packages of the missing lab tools with apt-get (as root; the package lists are
 * refreshed once if a package cannot be found). Nothing missing: nothing runs. A failure is a
 * LabError with the command to run by hand.
 */
export function installMissingTools(log: InstallLog, env: NodeJS.ProcessEnv = process.env): HostTool[] {
  const missing = missingTools(env);
  if (missing.length === 0) return [];
  const pkgs = [...new Set(missing.map((t) => t.debianPackage))];
  const fix = `install them by hand: apt-get install -y ${pkgs.join(" ")}`;
  if (!findTool("apt-get", env)) throw new LabError(`missing ${missing.map((t) => t.tool).join(", ")} and no apt-get to install them`, fix);
  if (process.getuid?.() !== 0) throw new LabError(`missing ${missing.map((t) => t.tool).join(", ")}; installing them needs root`, `run: sudo ${INSTALL_FIX}`);
  log(`installing ${pkgs.join(" ")} (apt-get)`);
  const install = ["install", "-y", "-q", "--no-install-recommends", ...pkgs];
  let r = runApt(install);
  if (!r.ok) {
    log("refreshing the package lists (apt-get update)");
    const u = runApt(["update", "-q"]);
    if (!u.ok) throw new LabError(`apt-get update failed:\n${lastLines(u.output, 5)}`, fix);
    r = runApt(install);
  }
  if (!r.ok) throw new LabError(`apt-get install ${pkgs.join(" ")} failed:\n${lastLines(r.output, 5)}`, fix);
  const still = missingTools(env);
  if (still.length > 0) throw new LabError(`still missing after the install: ${still.map((t) => t.tool).join(", ")}`, fix);
  return missing;
}
