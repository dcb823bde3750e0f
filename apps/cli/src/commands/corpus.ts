/**
 * `kvmx corpus [--json] [--entry ID...] [--dir DIR] [--trace-out DIR]`: known KVM bugs, rediscovered.
 * Each entry of the corpus (corpus/<id>/: the bug, its fix, KVM's code before and after as variant
 * files) runs through the checker: the pre-fix variant must break the entry's invariant (the shortest
 * counterexample, minimised, written as a scenario `kvmx run` replays) and the post-fix variant must be
 * safe with a complete search. Exit 0 when every entry holds, 1 otherwise.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { InputError, type KvmxEvent } from "@kvmx/core";
import { loadCorpus, runCorpusEntry, type CorpusResult } from "@kvmx/check";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { toJson, type Io } from "../io.js";
import { backendByName } from "../backends.js";
import { checkOutputDir, writeOutputFile } from "../files.js";

interface CorpusOptions {
  json?: boolean;
  entry?: string[];
  dir?: string;
  traceOut?: string;
}

export function register(program: Command, io: Io): void {
  program
    .command("corpus")
    .description(
      "Rediscover known KVM bugs: for every entry of the corpus (an upstream fix, KVM's code before and after it as variant files) " +
        "the pre-fix variant must break the entry's invariant — the shortest counterexample, minimised, as a scenario `kvmx run` " +
        "replays — and the post-fix variant must be safe with a complete search. Exit status: 0 every entry holds, 1 one does not.",
    )
    .option("--json", "print the results as JSON (schemaVersion 1), each counterexample's scenario included")
    .option("--entry <id...>", "run only these entries (directory names under the corpus)")
    .option("--dir <dir>", "the corpus directory (default: the repository's corpus/)")
    .option("--trace-out <dir>", "write each pre-fix counterexample as a scenario file <id>.pre-fix.yaml")
    .action(async (opts: CorpusOptions) => {
      if (opts.traceOut) await checkOutputDir(io, opts.traceOut, "--trace-out");
      const dir = corpusDir(io, opts.dir);
      let entries = loadCorpus(dir, { backend: backendByName });
      if (opts.entry?.length) {
        const unknown = opts.entry.filter((id) => !entries.some((e) => e.id === id));
        if (unknown.length) throw new InputError(`unknown corpus entry ${unknown.join(", ")} (known: ${entries.map((e) => e.id).join(", ")})`);
        entries = entries.filter((e) => opts.entry!.includes(e.id));
      }
      const results = entries.map((e) => runCorpusEntry(e, { backend: backendByName }));
      if (opts.traceOut) {
        for (const r of results) {
          if (r.preFix.scenario) await writeOutputFile(io, join(resolve(io.cwd, opts.traceOut), `${r.id}.pre-fix.yaml`), r.preFix.scenario, "scenario");
        }
      }
      if (opts.json) io.out(toJson({ schemaVersion: 1, corpus: relative(io.cwd, dir) || ".", entries: results.map(jsonOf) }));
      else io.out(renderCorpus(results, relative(io.cwd, dir) || dir));
      if (results.some((r) => !r.ok)) throw new CommandExit(ExitCode.checkFailed);
    });
}

/** --dir, or the nearest corpus/ above the working directory, or the one next to this installation. */
function corpusDir(io: Io, given: string | undefined): string {
  const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();
  if (given !== undefined) {
    const p = resolve(io.cwd, given);
    if (!isDir(p)) throw new InputError(`--dir ${given}: not a directory`);
    return p;
  }
  for (let d = resolve(io.cwd); ; d = dirname(d)) {
    if (isDir(join(d, "corpus")) && existsSync(join(d, "pnpm-workspace.yaml"))) return join(d, "corpus");
    if (dirname(d) === d) break;
  }
  for (const up of ["../../../corpus", "../../../../corpus"]) {
    const p = fileURLToPath(new URL(up, import.meta.url));
    if (isDir(p)) return p;
  }
  throw new InputError("no corpus directory found (run kvmx corpus inside the kvmx repository, or give --dir)");
}

/** An event in the scenario files' terse form: `guest-xsetbv 0x3`, `irq x86:irq-disable`. */
export function terseEvent(e: KvmxEvent): string {
  const rest = Object.entries(e)
    .filter(([k]) => k !== "kind")
    .map(([k, v]) => (k === "value" || k === "site" ? String(v) : `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`));
  return [e.kind, ...rest].join(" ");
}

function jsonOf(r: CorpusResult) {
  const { trace: _trace, ...pre } = r.preFix;
  return { ...r, preFix: pre };
}

export function renderCorpus(results: readonly CorpusResult[], dir: string): string {
  const rows = results.map((r) => [
    r.id,
    r.commit,
    r.kernel.split(" ")[0]!,
    r.invariant,
    r.preFix.found ? `${r.preFix.invariant} in ${r.preFix.events.length}: ${r.preFix.events.map(terseEvent).join("; ")}` : "NOT FOUND",
    r.postFix.verdict === "safe" ? `safe${r.postFix.complete ? "" : " (bounded)"}, ${r.postFix.states} states` : `${r.postFix.invariant}!`,
  ]);
  const head = ["entry", "fix", "kernel", "breaks", "before the fix: found in N events", "after the fix"];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(width[i]!))).join("  ").trimEnd();
  const out = [`kvmx corpus: ${results.length} known KVM bug${results.length === 1 ? "" : "s"} (${dir})`, "", line(head), ...rows.map(line), ""];
  const failed = results.filter((r) => !r.ok);
  for (const r of failed) for (const p of r.problems) out.push(`${r.id}: ${p}`);
  out.push(failed.length === 0 ? `all ${results.length} hold: each bug found before its fix, none after it (complete search)` : `${failed.length} of ${results.length} do not hold`);
  return out.join("\n") + "\n";
}
