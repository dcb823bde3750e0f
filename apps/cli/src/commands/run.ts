/**
 * `kvmx run FILE [--json]`: replays a scenario on the model and prints, per step of the world switch,
 * the site, its kind, the live XCR0, whose values sit in R16–R31, register-cache changes and
 * violations. Exit 1 when a violation happens (or an expectation fails).
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { describeTag, listSites, parseScenario, runScenario, type ExpectationResult, type Observation, type ScenarioRun, type TraceStep } from "@kvmx/core";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { toJson, type Io } from "../io.js";
import { backendByName } from "../backends.js";
import { readInputText } from "../files.js";

export function register(program: Command, io: Io): void {
  program
    .command("run")
    .description("Replay a scenario file step by step: sites, live XCR0, whose values are in R16–R31, violations")
    .argument("<file>", "scenario YAML file (see scenarios/README.md), or - for standard input")
    .option("--json", "machine-readable output (schemaVersion 1)")
    .option("--sites", "list the sites of one KVM_RUN for this scenario's backend and design (ids for `nmi` events), then stop")
    .action(async (file: string, opts: { json?: boolean; sites?: boolean }) => {
      const path = file === "-" ? "<stdin>" : resolve(io.cwd, file);
      const text = await readInputText(io, file, "scenario file");
      const scenario = parseScenario(text, path, { backend: backendByName });
      const run = runScenario(scenario);
      if (opts.sites) {
        const sites = listSites(run.machine.config).map((s) => ({ id: s.id, kind: s.kind, nmiOpen: s.nmiOpen, description: s.description }));
        io.out(opts.json ? toJson({ schemaVersion: 1, sites }) : sites.map((s) => `${s.id.padEnd(28)} ${s.kind.padEnd(5)} ${s.nmiOpen ? "NMI-open" : "        "}  ${s.description}`).join("\n") + "\n");
        return;
      }
      io.out(opts.json ? toJson(runToJson(run)) : renderRun(run));
      if (!run.ok) throw new CommandExit(ExitCode.checkFailed);
    });
}

/** Whose values sit in R16–R31: one owner, or the owners with counts. */
export function egprOwners(tags: readonly number[]): string {
  const counts = new Map<string, number>();
  for (const t of tags) counts.set(describeTag(t), (counts.get(describeTag(t)) ?? 0) + 1);
  if (counts.size === 1) return [...counts.keys()][0]!;
  return [...counts.entries()].map(([k, n]) => `${k}×${n}`).join(",");
}

function stepJson(t: TraceStep, index: number) {
  return {
    index,
    site: t.site,
    kind: t.kind,
    description: t.description,
    xcr0: t.xcr0,
    egprOwner: egprOwners(t.egprTags),
    egprTags: t.egprTags.map(describeTag),
    ...(t.availSet ? { availSet: t.availSet } : {}),
    ...(t.availCleared ? { availCleared: t.availCleared } : {}),
    ...(t.dirtySet ? { dirtySet: t.dirtySet } : {}),
    ...(t.dirtyCleared ? { dirtyCleared: t.dirtyCleared } : {}),
    ...(t.violations ? { violations: t.violations.map((v) => v.invariant) } : {}),
  };
}

export function runToJson(run: ScenarioRun) {
  const s = run.scenario;
  let n = 0;
  return {
    schemaVersion: 1,
    scenario: {
      name: s.name, description: s.description, file: s.file, backend: s.backend.name, design: s.design.name,
      host: s.host, guest: s.guest, options: s.options, pre: s.pre, ...(s.expect ? { expect: s.expect } : {}),
    },
    events: run.events.map((e) => ({
      index: e.index, event: e.event, description: e.description, cost: e.cost,
      observations: e.observations.map(observationJson),
      ...(e.expectations.length ? { expectations: e.expectations } : {}),
    })),
    steps: run.events.flatMap((e) => e.steps.map((t) => ({ event: e.index, ...stepJson(t, n++) }))),
    violations: run.violations.map((v) => ({ invariant: v.invariant, step: v.step, event: v.event, site: v.site, message: v.message })),
    expectations: run.expectations,
    expectationFailures: run.expectationFailures,
    ok: run.ok,
  };
}

/** An observation for JSON: a GET_XSAVE2 image as XSTATE_BV and component 19, not 4 KiB of bytes. */
function observationJson(o: Observation) {
  if (o.kind !== "xsave") return o;
  const { bytes, ...rest } = o;
  return { ...rest, size: bytes.length };
}

/** One line per observation: what the guest read, ioctl results, guest faults, the GET_XSAVE2 image, s.regs. */
export function observationText(o: Observation): string {
  const lvl = "level" in o && o.level ? ` in ${o.level}` : "";
  switch (o.kind) {
    case "guest-read":
      return `guest read ${o.reg} = ${hex(o.value)}${lvl}`;
    case "guest-fault":
      return `guest #${o.vector}${o.errorCode !== undefined ? `(${o.errorCode})` : ""}${lvl}, ${o.by === "kvm" ? "queued by KVM" : `raised by the CPU: ${o.detail}`}`;
    case "ioctl":
      return `${o.ioctl} ${o.ok ? "ok" : `${o.errno} (${o.reason})`}${o.exit ? `, exit ${o.exit}${o.toUserspace ? " to userspace" : ""}` : ""}`;
    case "xsave": {
      const apx = o.apx ? o.apx.map((v, k) => (v !== 0n ? `r${16 + k}=${hex(v)}` : "")).filter(Boolean) : undefined;
      return `KVM_GET_XSAVE2 image: XSTATE_BV ${hex(o.xstateBv)}${apx ? `, component 19 ${apx.length ? apx.join(" ") : "all zero"}` : ", no component 19"}`;
    }
    case "sync-regs":
      return `kvm_run->s.regs: ${Object.entries(o.regs).filter(([k, v]) => v !== 0n || k === "rip").map(([k, v]) => `${k}=${hex(v)}`).join(" ")}`;
  }
}

/** One expectation's outcome; where it is written, as a line:column of the scenario file itself. */
const expectationLine = (x: ExpectationResult, file: string): string => {
  const where = x.at.startsWith(`${file}:`) ? `line ${x.at.slice(file.length + 1)}` : x.at;
  return `${x.ok ? "expect ok" : "expect FAILED"}: ${x.key} — ${x.message}${where ? ` [${where}]` : ""}`;
};

const hex = (v: bigint): string => `0x${v.toString(16)}`;

export function renderRun(run: ScenarioRun): string {
  const s = run.scenario;
  const out: string[] = [];
  out.push(`scenario ${s.name}: ${s.backend.name}, design ${s.design.name}, host ${s.host.cpu}${s.host.kernelApx ? " (-mapxf kernel)" : ""}, guest APX ${s.guest.apx ? "on" : "off"}${s.pre ? ", PRE" : ""}`);
  if (s.description) out.push(`  ${s.description}`);
  let n = 0;
  for (const e of run.events) {
    out.push("", `event ${e.index}: ${e.description}`);
    for (const t of e.steps) {
      const cache = [
        t.availSet ? `avail+${t.availSet.join(",")}` : "",
        t.availCleared ? `avail-${t.availCleared.join(",")}` : "",
        t.dirtySet ? `dirty+${t.dirtySet.join(",")}` : "",
        t.dirtyCleared ? `dirty-${t.dirtyCleared.join(",")}` : "",
      ].filter(Boolean).join(" ").replaceAll("VCPU_REG_", "").replaceAll("VCPU_EXREG_", "");
      out.push(
        `  ${String(n++).padStart(4)} ${t.site.padEnd(26)} ${t.kind.padEnd(5)} XCR0 ${hex(t.xcr0).padEnd(8)} R16-R31 ${egprOwners(t.egprTags).padEnd(12)} ${t.description}${cache ? `  [${cache}]` : ""}`,
      );
      for (const v of t.violations ?? []) out.push(`       !! ${v.invariant}: ${v.message}`);
    }
    for (const o of e.observations) out.push(`       seen: ${observationText(o)}`);
    for (const x of e.expectations) out.push(`       ${expectationLine(x, s.file)}`);
  }
  out.push("");
  if (run.violations.length === 0) out.push("no violations");
  else {
    out.push(`${run.violations.length} violation(s):`);
    for (const v of run.violations) out.push(`  step ${v.step} (event ${v.event}, ${v.site}): ${v.invariant} — ${v.message}`);
  }
  for (const x of run.expectations) out.push(expectationLine(x, s.file));
  const checks = run.expectations.length + run.events.reduce((n, e) => n + e.expectations.length, 0);
  if (checks > 0 || run.expectationFailures.length) {
    if (run.expectationFailures.length === 0) out.push(`expectation holds (${checks} check${checks === 1 ? "" : "s"})`);
    for (const f of run.expectationFailures) out.push(`expectation FAILED: ${f}`);
  }
  return out.join("\n") + "\n";
}
