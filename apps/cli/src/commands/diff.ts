/**
 * `kvmx diff FILE… [--json]`: runs differential scenarios (scenarios/real/README.md) on the kvmx
 * model and on a real KVM, and prints every observable difference. The real side is this machine's
 * /dev/kvm, the lab's (`--lab`: kvm_amd under QEMU, the model side stays outside), or a saved
 * transcript (`--replay FILE`, no device). Against a real kernel the model is configured from what
 * that kernel reports. A difference the host kind's quirk table explains is shown with the quirk's
 * name; a known model bug awaiting its fix is shown as such; anything else exits 1. No device: 69.
 * `--against-model name=value…` compares the model with a second model whose assumptions differ —
 * the harness's self-test without a device.
 */
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import type { Command } from "commander";
import { ASSUMPTIONS, InputError, KvmxError, OutputError, type AssumptionName, type ModelOptions, type VendorOps } from "@kvmx/core";
import { svmBackend } from "@kvmx/svm";
import {
  DEFAULT_KVM_PATH,
  describeHost,
  diffKernels,
  HOST_KINDS,
  hostModel,
  kernelLabel,
  ModelKvm,
  openKvm,
  parseRealScenario,
  parseTranscript,
  PENDING_MODEL_BUGS,
  pendingBugsFor,
  QUIRKS_BY_HOST_KIND,
  recordTranscript,
  replayScenario,
  sha256,
  type DiffReport,
  type HostKind,
  type RealScenario,
  type Transcript,
} from "@kvmx/uapi";
import { vmxBackend } from "@kvmx/vmx";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { toJson, type Io } from "../io.js";
import { kvmxBin, labBootConfig, labCapture, withLabBootOptions, withTempDir, type LabBootOptions } from "./lab.js";

interface DiffOptions extends LabBootOptions {
  json?: boolean;
  quirks?: boolean;
  device: string;
  againstModel?: string[];
  record?: string;
  replay?: string;
  lab?: boolean;
  recordOnly?: boolean;
  strict?: boolean;
}

/** The model's backend for a host kind: SVM for kvm_amd hosts, VMX otherwise (kvm_pvm is VMX-based). */
export function backendForHost(kind: HostKind): VendorOps {
  return kind === "kvm_amd" || kind === "kvm_amd on an emulated CPU" ? svmBackend : vmxBackend;
}

const RECORDED_BY = "kvmx 0.1.0";

function modelFor(s: RealScenario, extra: Partial<ModelOptions> = {}): ModelKvm {
  return new ModelKvm({ backend: vmxBackend, cpu: s.model.cpu, design: s.model.design, options: { ...s.model.options, ...extra } });
}

function parseAssignments(list: readonly string[]): Partial<ModelOptions> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const m = /^([A-Za-z0-9]+)=(.+)$/.exec(a);
    const spec = m && Object.hasOwn(ASSUMPTIONS, m[1]!) ? ASSUMPTIONS[m[1] as AssumptionName] : undefined;
    if (!m || !spec) throw new InputError(`--against-model: "${a}" is not <assumption>=<alternative> (assumptions: ${Object.keys(ASSUMPTIONS).join(", ")})`);
    if (!(spec.alternatives as readonly string[]).includes(m[2]!)) {
      throw new InputError(`--against-model: ${m[1]} must be one of ${spec.alternatives.join(", ")}`);
    }
    out[m[1]!] = m[2]!;
  }
  return out as Partial<ModelOptions>;
}

const show = (v: string | undefined): string => (v === undefined ? "(none)" : v.length > 72 ? `${v.slice(0, 69)}...` : v);

export function renderDiff(r: DiffReport): string {
  const lines = [`${r.scenario} (${r.file}): ${r.left} vs ${r.right}, ${r.steps} steps`];
  if (r.differences.length === 0) lines.push("  no differences");
  const width = Math.max(8, r.left.length, r.right.length);
  for (const d of r.differences) {
    const where = d.at.line !== undefined ? `${d.at.file}:${d.at.line}:${d.at.column ?? 1}` : d.at.file;
    lines.push(`  step ${d.step} ${d.kind} (${where}) ${d.key}`);
    lines.push(`    ${r.left.padEnd(width)} ${show(d.left)}`);
    lines.push(`    ${r.right.padEnd(width)} ${show(d.right)}`);
    if (d.quirk) lines.push(`    explained by host quirk ${d.quirk}`);
    if (d.pendingBug) {
      const b = PENDING_MODEL_BUGS.find((x) => x.name === d.pendingBug);
      lines.push(`    MODEL BUG (known, fix pending): ${d.pendingBug}${b ? ` — ${b.kernelFunction}; fix in ${b.fixIn}` : ""}`);
    }
  }
  return lines.join("\n") + "\n";
}

function summary(reports: readonly DiffReport[]): { differences: number; explained: number; pending: number; unexplained: number } {
  const differences = reports.reduce((n, r) => n + r.differences.length, 0);
  const unexplained = reports.reduce((n, r) => n + r.unexplained, 0);
  const pending = reports.reduce((n, r) => n + r.pending, 0);
  return { differences, explained: differences - unexplained - pending, pending, unexplained };
}

const summaryLine = (s: ReturnType<typeof summary>, n: number): string =>
  `${n} scenario(s), ${s.differences} difference(s): ${s.explained} explained by host quirks, ${s.pending} pending model bug(s), ${s.unexplained} unexplained\n`;

/** Model side against a transcript: each recorded scenario (or those of `only`) replayed on a model configured from it. */
function replay(t: Transcript, only: readonly string[] | undefined, io: Io): DiffReport[] {
  const quirks = QUIRKS_BY_HOST_KIND[t.host.hostKind];
  // A recorded file is named relative to where it was recorded (the checkout's root): a path names it
  // when it resolves to it from here or ends with it (run from another folder), or by scenario name.
  const names = (f: string, s: Transcript["scenarios"][number]): boolean => {
    const abs = resolve(io.cwd, f);
    return abs === resolve(io.cwd, s.file) || abs.endsWith(`/${s.file.replace(/^\.\//, "")}`) || f === s.name;
  };
  const chosen = only ? t.scenarios.filter((s) => only.some((f) => names(f, s))) : t.scenarios;
  if (only && chosen.length < only.length) {
    const missing = only.filter((f) => !t.scenarios.some((s) => names(f, s)));
    throw new InputError(`not in the transcript: ${missing.join(", ")} (it has ${t.scenarios.map((s) => s.file).join(", ")})`);
  }
  return chosen.map((r) => {
    const onDisk = resolve(io.cwd, r.file);
    if (existsSync(onDisk) && sha256(readFileSync(onDisk, "utf8")) !== r.sha256) {
      io.err(`kvmx diff: note: ${r.file} changed since this transcript was recorded; replaying the recorded text\n`);
    }
    const scenario = parseRealScenario(r.text, r.file);
    const hm = hostModel(scenario, t.host, t.facts, backendForHost(t.host.hostKind));
    const model = new ModelKvm(hm.config);
    try {
      return replayScenario(r, { name: "model", kvm: model }, kernelLabel(t.host), hm.profile, quirks, pendingBugsFor(t.host, t.facts));
    } finally {
      model.close();
    }
  });
}

async function readScenarioFiles(files: readonly string[], io: Io): Promise<{ file: string; abs: string; text: string }[]> {
  const out = [];
  for (const f of files) {
    const abs = f === "-" ? "<stdin>" : resolve(io.cwd, f);
    const text = (await io.readInput(f === "-" ? "-" : abs)).toString("utf8");
    parseRealScenario(text, abs); // a bad file is reported before any device or lab is touched
    out.push({ file: f === "-" ? "<stdin>" : relative(io.cwd, abs) || abs, abs, text });
  }
  return out;
}

function writeTranscript(t: Transcript, path: string): void {
  try {
    writeFileSync(path, JSON.stringify(t, null, 1) + "\n");
  } catch (err) {
    throw new OutputError(`cannot write the transcript: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, path, { cause: err });
  }
}

export function register(program: Command, io: Io): void {
  const cmd = program
    .command("diff")
    .description("Run differential scenarios on the model and on a real KVM (this machine's, the lab's, or a recorded transcript); print every observable difference")
    .argument("[files...]", "differential scenario YAML files (see scenarios/real/README.md)")
    .option("--json", "machine-readable output (schemaVersion 2)")
    .option("--quirks", "list the accepted differences of each host kind and the known pending model bugs, and exit")
    .option("--device <path>", "KVM device node", DEFAULT_KVM_PATH)
    .option("--against-model <assignment...>", "compare with a second model using these assumptions (e.g. setXsaveApxAbsent=init-zeros) instead of the real kernel")
    .option("--record <file>", "save the real kernel's observations (with kernel version, CPU model and host kind) as a transcript")
    .option("--replay <file>", "compare the model with a saved transcript instead of a device")
    .option("--lab", "run the real side in `kvmx lab` (kvm_amd under QEMU); the model side runs here")
    .option("--strict", "exit 1 for known pending model bugs too")
    .option("--record-only", "with --record: save the real side only, no model comparison (what --lab runs inside the lab)");
  withLabBootOptions(cmd).action(async (files: string[], opts: DiffOptions) => {
    if (opts.quirks) {
      const kinds = HOST_KINDS.map((kind) => ({ hostKind: kind, quirks: QUIRKS_BY_HOST_KIND[kind].map((q) => ({ name: q.name, differs: q.differs, facts: q.facts })) }));
      const pending = PENDING_MODEL_BUGS.map((b) => ({ name: b.name, differs: b.differs, kernelFunction: b.kernelFunction, fixIn: b.fixIn }));
      if (opts.json) {
        io.out(toJson({ schemaVersion: 2, hostKinds: kinds, pendingModelBugs: pending }));
        return;
      }
      const lines: string[] = [];
      for (const k of kinds) {
        if (k.quirks.length === 0) continue;
        lines.push(`${k.hostKind}:`);
        for (const q of k.quirks) lines.push(`  ${q.name.padEnd(28)} ${q.differs} (${q.facts})`);
      }
      lines.push("known model bugs, fix pending:");
      if (pending.length === 0) lines.push("  (none)");
      for (const b of pending) lines.push(`  ${b.name.padEnd(28)} ${b.differs} (${b.kernelFunction}; fix in ${b.fixIn})`);
      io.out(lines.join("\n") + "\n");
      return;
    }
    if (files.length === 0 && !opts.replay) throw new KvmxError("kvmx diff needs scenario files (or --replay FILE, or --quirks)", "usage");
    if ([opts.lab, opts.replay !== undefined, opts.againstModel !== undefined].filter(Boolean).length > 1) {
      throw new KvmxError("--lab, --replay and --against-model are different real sides: pick one", "usage");
    }
    if (opts.recordOnly && !opts.record) throw new KvmxError("--record-only needs --record FILE", "usage");
    if (opts.record) {
      // before a boot or a device run: a transcript that cannot be saved is reported first
      const dir = dirname(resolve(io.cwd, opts.record));
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new OutputError("cannot write the transcript: its folder does not exist", resolve(io.cwd, opts.record));
    }
    const scenarios = await readScenarioFiles(files, io);

    let reports: DiffReport[];
    let quirkNames: string[] = [];
    let host: Transcript["host"] | undefined;
    if (opts.againstModel) {
      const extra = parseAssignments(opts.againstModel);
      reports = scenarios.map(({ abs, text }) => {
        const s = parseRealScenario(text, abs);
        const left = modelFor(s);
        const right = modelFor(s, extra);
        try {
          return diffKernels(s, { name: "model", kvm: left }, { name: `model(${opts.againstModel!.join(",")})`, kvm: right }, left.cfg.profile, []);
        } finally {
          left.close();
          right.close();
        }
      });
    } else {
      let t: Transcript;
      if (opts.replay) {
        const path = resolve(io.cwd, opts.replay);
        t = parseTranscript((await io.readInput(path)).toString("utf8"), opts.replay);
      } else if (opts.lab) {
        t = await withTempDir("kvmx-diff-lab-", async (out) => {
          const file = `${out}/transcript.json`;
          const config = labBootConfig(opts, io);
          const argv = [process.execPath, kvmxBin(), "diff", "--record-only", "--record", file, ...scenarios.map((s) => s.abs)];
          const { stdout, result } = await labCapture(argv, { ...config, outDir: out }, io);
          if (stdout) io.err(stdout);
          if (result.exitCode !== 0 || !existsSync(file)) {
            throw new KvmxError(`recording in the lab failed (exit ${result.exitCode})${result.kvm ? "" : ": the lab has no /dev/kvm"}`, "unavailable");
          }
          if (opts.record) copyFileSync(file, resolve(io.cwd, opts.record));
          return parseTranscript(readFileSync(file, "utf8"), opts.record ?? "lab transcript");
        });
      } else {
        const kvm = openKvm(opts.device);
        try {
          t = recordTranscript(kvm, describeHost(), scenarios.map(({ file, text }) => ({ file, text })), RECORDED_BY);
        } finally {
          kvm.close();
        }
        if (opts.record) writeTranscript(t, resolve(io.cwd, opts.record));
        if (opts.recordOnly) {
          io.err(`recorded ${t.scenarios.length} scenario(s) on ${kernelLabel(t.host)}${t.host.qemuCpu ? `, QEMU -cpu ${t.host.qemuCpu}` : ""}\n`);
          return;
        }
      }
      host = t.host;
      quirkNames = QUIRKS_BY_HOST_KIND[t.host.hostKind].map((q) => q.name);
      reports = replay(t, opts.replay && files.length > 0 ? files : undefined, io);
    }

    const s = summary(reports);
    if (opts.json) {
      io.out(toJson({ schemaVersion: 2, ...(host ? { host } : {}), ...s, reports, hostQuirks: quirkNames, pendingModelBugs: PENDING_MODEL_BUGS.map((b) => b.name) }));
    } else {
      if (host) io.out(`real side: ${kernelLabel(host)}, CPU ${host.cpuModel}${host.qemuCpu ? ` (QEMU -cpu ${host.qemuCpu})` : ""}\n`);
      for (const r of reports) io.out(renderDiff(r));
      io.out(summaryLine(s, reports.length));
    }
    if (s.unexplained > 0 || (opts.strict && s.pending > 0)) throw new CommandExit(ExitCode.checkFailed);
  });
}
