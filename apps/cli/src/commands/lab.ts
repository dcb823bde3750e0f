/**
 * `kvmx lab setup|exec|probe`: a real /dev/kvm on a machine without one. The lab boots a Debian
 * kernel with kvm_amd under QEMU's software emulator (@kvmx/lab), shares the host's files read-only
 * and runs a command there in the same working directory. Missing QEMU or a failed install: one line
 * with the fix, exit 69.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { fileURLToPath } from "node:url";
import { KvmxError } from "@kvmx/core";
import {
  DEFAULT_KERNEL,
  DEFAULT_MEMORY_MIB,
  labExec,
  labSetup,
  parseKernelSpec,
  type KernelSpec,
  type LabExecOptions,
  type LabExecResult,
  type Progress,
} from "@kvmx/lab";
import type { KvmCapName, KvmProbe } from "@kvmx/uapi";
import type { Command } from "commander";
import { CommandExit, type ExitCode } from "../exit-codes.js";
import { toJson, type Io } from "../io.js";
import { formatProbe } from "./probe.js";

/** Options every command that boots the lab takes. */
export interface LabBootOptions {
  kernel?: string;
  cpu?: string;
  memory?: string;
  smp?: string;
  timeout?: string;
  bootTimeout?: string;
  quiet?: boolean;
}

/** Adds the boot options (kernel, CPU model, memory, timeouts) to a command. */
export function withLabBootOptions(cmd: Command): Command {
  return cmd
    .option("--kernel <kernel>", `6.1, 6.12 (Debian kernels) or a folder with a vmlinuz and its lib/modules (default ${DEFAULT_KERNEL})`)
    .option("--cpu <model>", "QEMU CPU model with SVM: max, qemu64,+svm,+npt (a host without XSAVE), EPYC-Rome…", "max")
    .option("--memory <MiB>", "guest memory", String(DEFAULT_MEMORY_MIB))
    .option("--smp <n>", "virtual CPUs (more than 1 uses QEMU's multi-threaded emulator)", "1")
    .option("--timeout <seconds>", "stop the command after this long", "3600")
    .option("--boot-timeout <seconds>", "give up when the lab has not booted after this long", "180")
    .option("--quiet", "no progress lines on stderr");
}

function positive(text: string | undefined, flag: string, dflt: number): number {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new KvmxError(`${flag} expects a positive integer, got "${text}"`, "usage");
  return Number(text);
}

export function progressTo(io: Io, quiet: boolean | undefined): Progress {
  return quiet ? () => {} : (line) => io.err(`kvmx lab: ${line}\n`);
}

/** labExec options from the command line (everything but the command, its folder and its output). */
export function labBootConfig(opts: LabBootOptions, io: Io): Omit<LabExecOptions, "argv" | "cwd"> {
  const kernel: KernelSpec | undefined = opts.kernel === undefined ? undefined : parseKernelSpec(opts.kernel, io.cwd);
  return {
    ...(kernel ? { kernel } : {}),
    cpu: opts.cpu ?? "max",
    memoryMiB: positive(opts.memory, "--memory", DEFAULT_MEMORY_MIB),
    smp: positive(opts.smp, "--smp", 1),
    timeoutMs: positive(opts.timeout, "--timeout", 3600) * 1000,
    bootTimeoutMs: positive(opts.bootTimeout, "--boot-timeout", 180) * 1000,
    progress: progressTo(io, opts.quiet),
  };
}

/** This kvmx's bin/kvmx.js (the lab runs it with the host's node, through the shared root). */
export function kvmxBin(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    const bin = join(dir, "bin", "kvmx.js");
    if (existsSync(bin)) return bin;
  }
  throw new KvmxError("cannot find bin/kvmx.js beside this kvmx build", "internal");
}

/** Runs `argv` in the lab with its stdout captured (stderr streamed to ours); throws on a non-zero exit. */
export async function labCapture(argv: string[], config: Omit<LabExecOptions, "argv" | "cwd">, io: Io): Promise<{ stdout: string; result: LabExecResult }> {
  const chunks: Buffer[] = [];
  const dec = new StringDecoder("utf8");
  const result = await labExec({ ...config, argv, cwd: io.cwd, stdout: (b) => chunks.push(b), stderr: (b) => io.err(dec.write(b)) });
  return { stdout: Buffer.concat(chunks).toString("utf8"), result };
}

/** The kvmx probe --json document back into a KvmProbe (u64s arrive as "0x…" strings). */
function probeFromJson(j: { apiVersion: number; caps: Record<KvmCapName, number>; supportedXcr0: string; cpuid: KvmProbe["cpuid"] }): KvmProbe {
  return { apiVersion: j.apiVersion, caps: j.caps, supportedXcr0: BigInt(j.supportedXcr0), cpuid: j.cpuid.map((e) => ({ ...e, padding: [0, 0, 0] })) };
}

export function register(program: Command, io: Io): void {
  const lab = program
    .command("lab")
    .description("a real /dev/kvm on any machine: kvm_amd in a Debian kernel under QEMU's emulator (setup, exec, probe)");

  lab
    .command("setup")
    .description("install QEMU, busybox-static and cpio if absent (apt-get), fetch the kernel, build the initramfs, boot once")
    .option("--kernel <kernel...>", `6.1, 6.12 or a folder with a vmlinuz and its lib/modules (default ${DEFAULT_KERNEL})`)
    .option("--no-check", "do not boot the lab to check for /dev/kvm")
    .option("--quiet", "no progress lines on stderr")
    .action(async (opts: { kernel?: string[]; check: boolean; quiet?: boolean }) => {
      const kernels = (opts.kernel ?? [DEFAULT_KERNEL]).map((k) => parseKernelSpec(k, io.cwd));
      const r = await labSetup({ kernels, check: opts.check, progress: progressTo(io, opts.quiet) });
      let missing = 0;
      for (const k of r.kernels) {
        const c = k.check;
        const state = c ? (c.kvm ? `/dev/kvm present, booted in ${(c.bootMs / 1000).toFixed(1)} s` : "booted, but NO /dev/kvm") : "not booted (--no-check)";
        if (c && !c.kvm) missing++;
        io.out(`${k.spec}: ${k.images.kernel.version} (${k.images.kernel.source}); ${state}\n`);
      }
      if (missing > 0) throw new KvmxError("the lab booted without /dev/kvm (its console said why above)", "unavailable");
    });

  withLabBootOptions(
    lab
      .command("exec")
      .description("boot the lab and run a command there, in this folder, with /dev/kvm; exits with the command's status")
      .argument("<command...>", "the command and its arguments (after --)")
      .option("--out <dir>", "a folder shared writable at the same path inside the lab (everything else is read-only to the host)"),
  ).action(async (argv: string[], opts: LabBootOptions & { out?: string }) => {
    const config = labBootConfig(opts, io);
    const dec = new StringDecoder("utf8");
    const r = await labExec({
      ...config,
      argv,
      cwd: io.cwd,
      ...(opts.out !== undefined ? { outDir: resolve(io.cwd, opts.out) } : {}),
      stdout: (b) => io.outBytes(b),
      stderr: (b) => io.err(dec.write(b)),
    });
    // the command's own status passes through unchanged
    if (r.exitCode !== 0) throw new CommandExit(r.exitCode as ExitCode);
  });

  withLabBootOptions(
    lab
      .command("probe")
      .description("`kvmx probe` inside the lab: kernel version, CPU model, capabilities, supported XCR0, XSAVE2 size, CPUID")
      .option("--json", "machine-readable output (schemaVersion 1)"),
  ).action(async (opts: LabBootOptions & { json?: boolean }) => {
    const config = labBootConfig(opts, io);
    const { stdout, result } = await labCapture([process.execPath, kvmxBin(), "probe", "--json"], config, io);
    if (result.exitCode !== 0) {
      throw new KvmxError(`kvmx probe failed inside the lab (exit ${result.exitCode})${result.kvm ? "" : ": the lab has no /dev/kvm"}`, "unavailable");
    }
    const j = JSON.parse(stdout);
    const lab = { kernel: result.kernelVersion, qemuCpu: result.cpu, cpuModel: result.cpuModel, bootSeconds: Number((result.bootMs / 1000).toFixed(1)) };
    if (opts.json) {
      io.out(toJson({ ...j, lab }));
      return;
    }
    io.out(`lab: Linux ${lab.kernel}, QEMU -cpu ${lab.qemuCpu} (${lab.cpuModel}), booted in ${lab.bootSeconds} s\n`);
    io.out(formatProbe(probeFromJson(j), j.device));
  });
}

/** A temporary folder for the lab to write into (`kvmx diff --lab`), removed afterwards. */
export function withTempDir<T>(prefix: string, f: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return f(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}
