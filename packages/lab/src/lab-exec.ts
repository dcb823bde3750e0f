import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { labCacheDir } from "./cache-dir.js";
import { LabError } from "./errors.js";
import { commandScript, CONSOLE_PREFIX, CONTROL_FILES } from "./guest-init.js";
import { requireTool } from "./host-tools.js";
import { bootImages } from "./initramfs.js";
import { DEFAULT_KERNEL, resolveKernel, type KernelSpec } from "./kernel-source.js";
import { silent, type Progress } from "./progress.js";
import { CPU_MODEL, qemuArgs } from "./qemu-command.js";

export interface LabExecOptions {
  /** The command and its arguments, run in `cwd` inside the lab. */
  readonly argv: readonly string[];
  readonly cwd: string;
  /** The command's environment (default: this process's). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly kernel?: KernelSpec;
  /** A QEMU CPU model with SVM: "max" (default), "qemu64,+svm,+npt" (no XSAVE), "EPYC-Rome"… */
  readonly cpu?: string;
  readonly memoryMiB?: number;
  readonly smp?: number;
  /** A host folder mounted writable at the same path inside the lab (results come back through it). */
  readonly outDir?: string;
  /** Extra words for the lab kernel's command line (e.g. "rcupdate.rcu_expedited=1"). */
  readonly kernelArgs?: readonly string[];
  /** From QEMU's start to the command's start (default 180 s). */
  readonly bootTimeoutMs?: number;
  /** For the command itself (default 3600 s). */
  readonly timeoutMs?: number;
  readonly cacheDir?: string;
  /** May fetch a Debian kernel that is not in the cache yet (default true). */
  readonly allowFetch?: boolean;
  readonly progress?: Progress;
  readonly stdout?: (chunk: Buffer) => void;
  readonly stderr?: (chunk: Buffer) => void;
}

export interface LabExecResult {
  readonly exitCode: number;
  readonly kernelVersion: string;
  readonly cpu: string;
  /** /dev/kvm was present in the lab. */
  readonly kvm: boolean;
  /** The CPU model name the lab's kernel sees (/proc/cpuinfo), e.g. "QEMU TCG CPU version 2.5+". */
  readonly cpuModel: string;
  /** QEMU start → the command starts. */
  readonly bootMs: number;
  /** The command alone. */
  readonly commandMs: number;
  /** QEMU start → QEMU gone. */
  readonly totalMs: number;
  /** The lab's console: kernel messages and /init's reports. */
  readonly console: string;
}

/**
 * Set in the command's environment: the QEMU CPU model and the kernel release of the lab (so a
 * program can tell it runs on an emulated CPU, e.g. to pick the right table of host quirks).
 */
export const LAB_ENV = { qemuCpu: "KVMX_LAB_QEMU_CPU", kernel: "KVMX_LAB_KERNEL" } as const;

export const DEFAULT_BOOT_TIMEOUT_MS = 180_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 3_600_000;
export const DEFAULT_MEMORY_MIB = 2048;
const CONSOLE_KEEP = 64 * 1024;

/**
 * Why the lab cannot boot here without installing or downloading anything, or undefined when it can:
 * tests that need the lab skip with this reason.
 */
export function labUnavailableReason(kernel: KernelSpec = { kind: "debian", series: DEFAULT_KERNEL }, cacheDir = labCacheDir()): string | undefined {
  try {
    requireTool("qemu-system-x86_64");
    resolveKernel(kernel, cacheDir, silent, false);
    return undefined;
  } catch (err) {
    if (err instanceof LabError) return err.message;
    throw err;
  }
}

interface Listener {
  readonly server: Server;
  readonly ended: Promise<void>;
}

/** A Unix socket QEMU connects to as a client; its bytes go to `onData` until QEMU closes it. */
function listen(path: string, onData: (b: Buffer) => void): Promise<Listener> {
  return new Promise((resolveListen, reject) => {
    let endedResolve!: () => void;
    const ended = new Promise<void>((r) => (endedResolve = r));
    const server = createServer((sock: Socket) => {
      sock.on("data", onData);
      sock.on("close", () => endedResolve());
      sock.on("error", () => endedResolve());
    });
    server.on("error", reject);
    server.listen(path, () => resolveListen({ server, ended }));
  });
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const consoleTail = (text: string): string =>
  text
    .split("\n")
    .filter((l) => l.trim())
    .slice(-15)
    .map((l) => `  | ${l}`)
    .join("\n");

/**
 * Boots the lab, runs `argv` in `cwd` with /dev/kvm present, streams its stdout and stderr, and
 * returns its exit code with the boot and run times. Each call has its own temporary folder
 * (control share and sockets), so boots run in parallel without clashing. Failures to boot, a
 * timeout, or a VM that stops before the command finished are LabErrors (exit 69) that carry the
 * end of the console.
 */
export async function labExec(o: LabExecOptions): Promise<LabExecResult> {
  if (o.argv.length === 0) throw new LabError("no command to run in the lab", "pass one after --, e.g. kvmx lab exec -- uname -a", "usage");
  const cpu = o.cpu ?? "max";
  if (!CPU_MODEL.test(cpu)) throw new LabError(`--cpu ${JSON.stringify(cpu)} is not a QEMU CPU model`, "e.g. max, qemu64,+svm,+npt or EPYC-Rome", "bad-input");
  for (const a of o.kernelArgs ?? []) {
    if (!/^[A-Za-z0-9_.,=:/+-]+$/.test(a)) throw new LabError(`kernel argument ${JSON.stringify(a)} has characters a kernel command line cannot carry`, undefined, "bad-input");
  }
  if (o.outDir !== undefined && !isAbsolute(o.outDir)) throw new LabError(`the output folder must be an absolute path: ${o.outDir}`, undefined, "usage");
  const qemu = requireTool("qemu-system-x86_64");
  const progress = o.progress ?? silent;
  const cacheDir = o.cacheDir ?? labCacheDir();
  const kernel = resolveKernel(o.kernel ?? { kind: "debian", series: DEFAULT_KERNEL }, cacheDir, progress, o.allowFetch ?? true);
  const images = bootImages(kernel, cacheDir, progress);
  if (o.outDir !== undefined) {
    mkdirSync(o.outDir, { recursive: true });
    if (!statSync(o.outDir).isDirectory()) throw new LabError(`${o.outDir} is not a folder`, undefined, "bad-input");
  }

  const dir = mkdtempSync(join(tmpdir(), "kvmx-lab-"));
  const controlDir = join(dir, "ctl");
  mkdirSync(controlDir);
  writeFileSync(join(controlDir, CONTROL_FILES.script), commandScript(o.cwd, o.argv, { ...(o.env ?? process.env), [LAB_ENV.qemuCpu]: cpu, [LAB_ENV.kernel]: kernel.version }));
  if (o.outDir !== undefined) writeFileSync(join(controlDir, CONTROL_FILES.outPath), o.outDir);

  let consoleText = "";
  let pending = "";
  let ready = false;
  let kvm = false;
  let cpuModel = "";
  let guestError: string | undefined;
  let readyAt = 0;
  const started = Date.now();
  let onReady: () => void = () => {};
  const onConsole = (b: Buffer) => {
    const s = b.toString("utf8");
    consoleText = (consoleText + s).slice(-CONSOLE_KEEP);
    pending += s;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, "");
      pending = pending.slice(nl + 1);
      const at = line.indexOf(CONSOLE_PREFIX);
      if (at < 0) continue;
      const msg = line.slice(at + CONSOLE_PREFIX.length).trim();
      if (msg === "kvm yes") kvm = true;
      else if (msg.startsWith("cpu ")) cpuModel = msg.slice(4);
      else if (msg.startsWith("error: ")) guestError = msg.slice(7);
      else if (msg.startsWith("ready")) {
        ready = true;
        readyAt = Date.now();
        onReady();
      }
    }
  };

  const listeners: Listener[] = [];
  try {
    const sockets = { console: join(dir, "console.sock"), stdout: join(dir, "out.sock"), stderr: join(dir, "err.sock") };
    listeners.push(await listen(sockets.console, onConsole));
    listeners.push(await listen(sockets.stdout, (b) => o.stdout?.(b)));
    listeners.push(await listen(sockets.stderr, (b) => o.stderr?.(b)));
    const args = qemuArgs({
      qemu,
      cpu,
      memoryMiB: o.memoryMiB ?? DEFAULT_MEMORY_MIB,
      smp: o.smp ?? 1,
      bootImage: images.bootImage,
      initramfs: images.initramfs,
      controlDir,
      ...(o.outDir !== undefined ? { outDir: o.outDir } : {}),
      ...(o.kernelArgs ? { kernelArgs: o.kernelArgs } : {}),
      sockets,
    });
    progress(`booting ${kernel.version} (-cpu ${cpu})`);
    const child = spawn(qemu, args, { stdio: ["ignore", "pipe", "pipe"] });
    let qemuOutput = "";
    child.stdout.on("data", (b: Buffer) => (qemuOutput = (qemuOutput + b.toString("utf8")).slice(-8192)));
    child.stderr.on("data", (b: Buffer) => (qemuOutput = (qemuOutput + b.toString("utf8")).slice(-8192)));
    let timedOut: "boot" | "command" | undefined;
    const bootTimeout = o.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
    const commandTimeout = o.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    let timer = setTimeout(() => {
      timedOut = "boot";
      child.kill("SIGKILL");
    }, bootTimeout);
    onReady = () => {
      clearTimeout(timer);
      progress(`ready after ${seconds(readyAt - started)}${kvm ? "" : " (no /dev/kvm in the lab)"}`);
      timer = setTimeout(() => {
        timedOut = "command";
        child.kill("SIGKILL");
      }, commandTimeout);
    };
    const status = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((r) => {
      child.on("error", (error) => r({ code: null, signal: null, error }));
      child.on("close", (code, signal) => r({ code, signal }));
    });
    clearTimeout(timer);
    const finished = Date.now();
    // the sockets close with QEMU; wait briefly for their last bytes
    await Promise.race([Promise.all(listeners.map((l) => l.ended)), new Promise((r) => setTimeout(r, 2000))]);
    if (pending) onConsole(Buffer.from("\n"));

    const tail = consoleTail(consoleText);
    if (status.error) throw new LabError(`could not start ${qemu}: ${status.error.message}`, "run `kvmx lab setup`");
    if (timedOut === "boot") {
      throw new LabError(`the lab did not boot within ${seconds(bootTimeout)} (${kernel.version}, -cpu ${cpu}); its console ended with:\n${tail}`, "raise --boot-timeout on a slow or busy machine");
    }
    if (timedOut === "command") {
      throw new LabError(`the command did not finish within ${seconds(commandTimeout)} in the lab (stopped)`, "raise --timeout");
    }
    const exitFile = join(controlDir, CONTROL_FILES.exitCode);
    if (!existsSync(exitFile)) {
      if (!ready && status.code !== 0) {
        throw new LabError(`QEMU failed (exit ${status.code ?? status.signal}): ${qemuOutput.trim().split("\n").slice(-3).join(" / ")}`, "check --cpu and --memory; `kvmx lab setup` checks the installation");
      }
      const why = guestError ?? "the lab stopped before the command finished";
      throw new LabError(`${why} (${kernel.version}, -cpu ${cpu}); its console ended with:\n${tail}`, undefined);
    }
    const exitCode = Number.parseInt(readFileSync(exitFile, "utf8").trim(), 10);
    const result: LabExecResult = {
      exitCode: Number.isNaN(exitCode) ? 70 : exitCode,
      kernelVersion: kernel.version,
      cpu,
      kvm,
      cpuModel,
      bootMs: readyAt - started,
      commandMs: finished - readyAt,
      totalMs: finished - started,
      console: consoleText,
    };
    progress(`exit ${result.exitCode} after ${seconds(result.totalMs)} (boot ${seconds(result.bootMs)}, command ${seconds(result.commandMs)})`);
    return result;
  } finally {
    for (const l of listeners) l.server.close();
    if (!process.env.KVMX_LAB_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}
