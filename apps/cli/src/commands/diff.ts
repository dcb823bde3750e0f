/**
 * `kvmx diff FILE [--json]`: runs a differential scenario (scenarios/real/README.md) on the kvmx model
 * (simulated /dev/kvm, VMX backend) and on the real /dev/kvm, and prints every observable difference.
 * Differences a named host quirk explains (FACTS.md §8) are shown as such; any other one exits 1.
 * Without /dev/kvm: exit 69. `--against-model name=value…` replaces the real kernel with a second
 * model whose assumptions differ — a self-test of the harness that needs no device.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { ASSUMPTIONS, InputError, type AssumptionName, type ModelOptions } from "@kvmx/core";
import {
  DEFAULT_KVM_PATH,
  diffKernels,
  HOST_QUIRKS,
  ModelKvm,
  openKvm,
  parseRealScenario,
  type DiffReport,
  type Kvm,
  type RealScenario,
} from "@kvmx/uapi";
import { vmxBackend } from "@kvmx/vmx";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { toJson, type Io } from "../io.js";

interface DiffOptions {
  json?: boolean;
  quirks?: boolean;
  device: string;
  againstModel?: string[];
}

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
  for (const d of r.differences) {
    const where = d.at.line !== undefined ? `${d.at.file}:${d.at.line}:${d.at.column ?? 1}` : d.at.file;
    lines.push(`  step ${d.step} ${d.kind} (${where}) ${d.key}`);
    lines.push(`    ${r.left.padEnd(8)} ${show(d.left)}`);
    lines.push(`    ${r.right.padEnd(8)} ${show(d.right)}`);
    if (d.quirk) lines.push(`    explained by host quirk ${d.quirk}`);
  }
  const explained = r.differences.length - r.unexplained;
  lines.push(`${r.differences.length} difference(s): ${explained} explained by host quirks, ${r.unexplained} unexplained`);
  return lines.join("\n") + "\n";
}

export function register(program: Command, io: Io): void {
  program
    .command("diff")
    .description("Run a differential scenario on the model and on the real /dev/kvm; print every observable difference")
    .argument("[file]", "differential scenario YAML (see scenarios/real/README.md)")
    .option("--json", "machine-readable output (schemaVersion 1)")
    .option("--quirks", "list the named host quirks (FACTS.md §8) the comparison may use, and exit")
    .option("--device <path>", "KVM device node", DEFAULT_KVM_PATH)
    .option("--against-model <assignment...>", "compare with a second model using these assumptions (e.g. setXsaveApxAbsent=init-zeros) instead of the real kernel")
    .action(async (file: string | undefined, opts: DiffOptions) => {
      if (opts.quirks) {
        const rows = HOST_QUIRKS.map((q) => ({ name: q.name, differs: q.differs, facts: q.facts }));
        io.out(opts.json ? toJson({ schemaVersion: 1, hostQuirks: rows }) : rows.map((q) => `${q.name.padEnd(24)} ${q.differs} (${q.facts})`).join("\n") + "\n");
        return;
      }
      if (file === undefined) throw new InputError("kvmx diff needs a scenario file (or --quirks)");
      const path = file === "-" ? "<stdin>" : resolve(io.cwd, file);
      const text = (await io.readInput(file === "-" ? "-" : path)).toString("utf8");
      const scenario = parseRealScenario(text, path);
      const left = modelFor(scenario);
      let right: { name: string; kvm: Kvm };
      let quirks = HOST_QUIRKS;
      if (opts.againstModel) {
        const extra = parseAssignments(opts.againstModel);
        right = { name: `model(${opts.againstModel.join(",")})`, kvm: modelFor(scenario, extra) };
        quirks = [];
      } else {
        right = { name: "kvm", kvm: openKvm(opts.device) };
      }
      let report: DiffReport;
      try {
        report = diffKernels(scenario, { name: "model", kvm: left }, right, left.cfg.profile, quirks);
      } finally {
        right.kvm.close();
        left.close();
      }
      if (opts.json) {
        io.out(
          toJson({
            schemaVersion: 1,
            ...report,
            hostQuirks: quirks.map((q) => ({ name: q.name, differs: q.differs, facts: q.facts })),
          }),
        );
      } else {
        io.out(renderDiff(report));
      }
      if (report.unexplained > 0) throw new CommandExit(ExitCode.checkFailed);
    });
}
