/**
 * Scenario files (DESIGN.md "Scenarios"): a backend, a design, host and guest, options, events, and
 * optional expectations. Parsed from YAML with every error at file:line:column; backends come from a
 * registry the caller passes (core knows no vendor). Events are the KvmxEvent JSON shape, or a terse
 * string "kind arg…" (e.g. `guest-write r16 0x1111`, `nmi vmx:handle-nmi`, `migrate c-xfeatures`).
 */
import { dirname, resolve } from "node:path";
import { readFileSync } from "node:fs";
import { ScenarioError } from "../errors.js";
import { ASSUMPTIONS, type AssumptionName, type ModelOptions } from "../model-options.js";
import { parseU64 } from "../cpu/hex-bytes.js";
import { gprIndex } from "../cpu/gpr.js";
import { builtinDesign, type Design } from "../kvm/designs.js";
import { EVENT_KINDS, type KvmxEvent } from "../kvm/events.js";
import type { VendorOps } from "../kvm/vendor-ops.js";
import type { InvariantName } from "../kvm/explorable.js";
import { INVARIANTS } from "../kvm/explorable.js";
import { KVM_REGS_FIELDS } from "../kvm/uapi-ops.js";
import { designFromYaml, parseDesignFile } from "./design-file.js";
import { resolveConfig } from "../kvm/machine.js";
import { CPU_PROFILE_NAMES, isCpuProfileName } from "../cpu/cpu-profiles.js";
import { listNmiSites } from "../kvm/enter-guest.js";
import { YamlSource, expectMap, expectString, type YamlPath } from "./yaml-source.js";

export type ScenarioExpect = { ok: true } | { violations: InvariantName[] };

export interface Scenario {
  name: string;
  description: string;
  file: string;
  backend: VendorOps;
  design: Design;
  host: { cpu: string; kernelApx: boolean };
  guest: { apx: boolean };
  options: Partial<ModelOptions>;
  pre: boolean;
  events: KvmxEvent[];
  expect?: ScenarioExpect;
}

export interface ParseScenarioOptions {
  /** Backend registry: name → vendor ops (the CLI's backends.ts). */
  backend(name: string): VendorOps | undefined;
  /** Reads a design file a scenario names by path (default: the file system, relative to the scenario). */
  readFile?(path: string): string;
}

const SCENARIO_KEYS = ["name", "description", "backend", "design", "host", "guest", "options", "pre", "events", "expect"] as const;

/** Fields each event kind takes (beyond `kind`), and which are required. */
const EVENT_FIELDS: Record<string, { required: readonly string[]; optional: readonly string[] }> = {
  "guest-xsetbv": { required: ["value"], optional: [] },
  "guest-write": { required: ["reg", "value"], optional: [] },
  "guest-read": { required: ["reg"], optional: [] },
  "guest-wrmsrns-imm": { required: ["reg"], optional: ["msr", "value"] },
  "guest-rdmsr-imm": { required: ["reg"], optional: ["msr"] },
  "guest-cpuid": { required: [], optional: [] },
  "guest-hlt": { required: [], optional: [] },
  "guest-io": { required: [], optional: [] },
  nmi: { required: ["site"], optional: [] },
  preempt: { required: [], optional: [] },
  "get-xsave": { required: [], optional: [] },
  "set-xsave": { required: [], optional: ["apx", "xstateBv"] },
  "get-regs": { required: [], optional: [] },
  "set-regs": { required: ["regs"], optional: [] },
  "set-xcrs": { required: ["xcr0"], optional: [] },
  migrate: { required: [], optional: ["design"] },
  reset: { required: [], optional: [] },
  init: { required: [], optional: [] },
};

/** Positional fields of the string shorthand, per kind. */
const SHORTHAND: Record<string, readonly string[]> = {
  "guest-xsetbv": ["value"], "guest-write": ["reg", "value"], "guest-read": ["reg"],
  "guest-wrmsrns-imm": ["reg", "value"], "guest-rdmsr-imm": ["reg"], nmi: ["site"], "set-xcrs": ["xcr0"], migrate: ["design"],
};

/** A vendor event kind, `vendor:name` (e.g. vmx-nested:vmlaunch): what a backend's vendorEvents alphabet produces. */
const VENDOR_EVENT_KIND = /^[a-z0-9][a-z0-9-]*:[a-z0-9][a-z0-9-]*$/;

function eventFrom(src: YamlSource, raw: unknown, path: YamlPath, backend: VendorOps): KvmxEvent {
  let obj: Record<string, unknown>;
  if (typeof raw === "string") {
    const [kind, ...args] = raw.trim().split(/\s+/);
    if (kind && VENDOR_EVENT_KIND.test(kind)) {
      // Vendor events carry no positional fields; their extra fields need the mapping form.
      if (args.length > 0) src.fail(`vendor event "${kind}" takes no arguments in the string form (use { kind: ${kind}, ... })`, path);
      return vendorEvent(src, { kind }, path, backend);
    }
    if (!kind || !(kind in EVENT_FIELDS)) src.fail(`unknown event ${JSON.stringify(kind)} (known: ${EVENT_KINDS.join(", ")}, or a backend's vendor:event)`, path);
    const names = SHORTHAND[kind] ?? [];
    if (args.length > names.length) src.fail(`event "${kind}" takes at most ${names.length} argument(s): ${names.join(" ") || "none"}`, path);
    obj = { kind };
    args.forEach((a, i) => (obj[names[i]!] = a));
  } else if (raw !== null && typeof raw === "object" && !Array.isArray(raw)) {
    obj = raw as Record<string, unknown>;
  } else {
    return src.fail("an event is a mapping with `kind`, or a string like `guest-write r16 0x1111`", path);
  }
  const kind = obj.kind;
  if (typeof kind !== "string") src.fail("event needs a `kind`", path);
  if (!(kind in EVENT_FIELDS)) {
    if (VENDOR_EVENT_KIND.test(kind)) return vendorEvent(src, obj, [...path, "kind"], backend);
    src.fail(`unknown event kind "${kind}" (known: ${EVENT_KINDS.join(", ")})`, typeof raw === "string" ? path : [...path, "kind"]);
  }
  const spec = EVENT_FIELDS[kind]!;
  if (typeof raw !== "string") expectMap(src, obj, path, ["kind", ...spec.required, ...spec.optional], `event "${kind}"`);
  for (const f of spec.required) if (obj[f] === undefined) src.fail(`event "${kind}" needs \`${f}\``, path);
  const at = (f: string): YamlPath => (typeof raw === "string" ? path : [...path, f]);
  const u64 = (f: string) => {
    try {
      parseU64(obj[f], `${kind} ${f}`);
    } catch (e) {
      src.fail((e as Error).message, at(f));
    }
  };
  if (obj.reg !== undefined && (typeof obj.reg !== "string" || gprIndex(obj.reg) === undefined)) src.fail(`"${String(obj.reg)}" is not a GPR name (rax … r31)`, at("reg"));
  for (const f of ["value", "xcr0", "xstateBv"]) if (obj[f] !== undefined) u64(f);
  if (obj.msr !== undefined) {
    const n = typeof obj.msr === "string" ? Number(obj.msr) : obj.msr;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 0xffff_ffff) src.fail("msr must be a u32", at("msr"));
    obj.msr = n;
  }
  if (obj.apx !== undefined) {
    if (!Array.isArray(obj.apx) || obj.apx.length > 16) src.fail("apx must be a list of up to 16 values (R16..R31)", at("apx"));
    (obj.apx as unknown[]).forEach((v, i) => {
      try {
        parseU64(v, `set-xsave apx[${i}]`);
      } catch (e) {
        src.fail((e as Error).message, [...at("apx"), i]);
      }
    });
  }
  if (obj.regs !== undefined) {
    const r = expectMap(src, obj.regs, at("regs"), KVM_REGS_FIELDS, "set-regs regs");
    for (const k of Object.keys(r)) {
      try {
        parseU64(r[k], `set-regs ${k}`);
      } catch (e) {
        src.fail((e as Error).message, [...at("regs"), k]);
      }
    }
  }
  return obj as KvmxEvent;
}

function parseOptions(src: YamlSource, raw: unknown): Partial<ModelOptions> {
  if (raw === undefined) return {};
  const names = Object.keys(ASSUMPTIONS) as AssumptionName[];
  const m = expectMap(src, raw, ["options"], names, "options");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    const alts = ASSUMPTIONS[k as AssumptionName].alternatives as readonly string[];
    const s = String(v);
    if (!alts.includes(s)) src.fail(`option ${k}: "${s}" is not one of ${alts.join(", ")}`, ["options", k]);
    out[k] = s;
  }
  return out as Partial<ModelOptions>;
}

function parseExpect(src: YamlSource, raw: unknown): ScenarioExpect | undefined {
  if (raw === undefined) return undefined;
  const m = expectMap(src, raw, ["expect"], ["ok", "violations"], "expect");
  if (m.ok === true && m.violations === undefined) return { ok: true };
  if (Array.isArray(m.violations) && m.ok === undefined) {
    const names = Object.keys(INVARIANTS);
    m.violations.forEach((v, i) => {
      if (typeof v !== "string" || !names.includes(v)) src.fail(`unknown invariant ${JSON.stringify(v)} (known: ${names.join(", ")})`, ["expect", "violations", i]);
    });
    return { violations: m.violations as InvariantName[] };
  }
  return src.fail("expect is `{ ok: true }` or `{ violations: [names] }`", ["expect"]);
}

/**
 * A vendor event is the backend's to validate when it applies it (its alphabet depends on the state,
 * e.g. L1 vs L2); a backend with no vendor events at all is rejected here, at the event's position.
 */
function vendorEvent(src: YamlSource, obj: Record<string, unknown>, at: YamlPath, backend: VendorOps): KvmxEvent {
  if (!backend.applyVendorEvent) src.fail(`backend ${backend.name} has no vendor events (got "${String(obj.kind)}")`, at);
  return obj as KvmxEvent;
}

/** Parses and validates a scenario. `file` is used for messages and to resolve design paths. */
export function parseScenario(text: string, file: string, opts: ParseScenarioOptions): Scenario {
  const src = new YamlSource(text, file);
  const m = expectMap(src, src.data, [], SCENARIO_KEYS, "scenario");
  const name = expectString(src, m.name, ["name"], "name");
  const description = typeof m.description === "string" ? m.description : "";
  const backendName = expectString(src, m.backend, ["backend"], "backend");
  const backend = opts.backend(backendName);
  if (!backend) return src.fail(`unknown backend "${backendName}"`, ["backend"]);
  let design: Design;
  if (typeof m.design === "string") {
    const b = builtinDesign(m.design);
    if (b) design = b;
    else if (/[./\\]/.test(m.design) || /\.(ya?ml|json)$/.test(m.design)) {
      const path = resolve(dirname(file), m.design);
      let text2: string;
      try {
        text2 = (opts.readFile ?? ((p: string) => readFileSync(p, "utf8")))(path);
      } catch (e) {
        return src.fail(`cannot read design file ${path}: ${(e as Error).message}`, ["design"]);
      }
      design = parseDesignFile(text2, path);
    } else return src.fail(`unknown design "${m.design}" (a built-in name or a file path)`, ["design"]);
  } else design = designFromYaml(src, m.design, ["design"]);
  const host = expectMap(src, m.host ?? {}, ["host"], ["cpu", "kernelApx"], "host");
  const guest = expectMap(src, m.guest ?? {}, ["guest"], ["apx"], "guest");
  const cpu = expectString(src, host.cpu ?? "dmr", ["host", "cpu"], "host cpu");
  if (!isCpuProfileName(cpu)) src.fail(`unknown CPU profile "${cpu}" (known: ${CPU_PROFILE_NAMES.join(", ")})`, ["host", "cpu"]);
  if (host.kernelApx !== undefined && typeof host.kernelApx !== "boolean") src.fail("kernelApx must be true or false", ["host", "kernelApx"]);
  if (guest.apx !== undefined && typeof guest.apx !== "boolean") src.fail("apx must be true or false", ["guest", "apx"]);
  if (m.pre !== undefined && typeof m.pre !== "boolean") src.fail("pre must be true or false", ["pre"]);
  if (!Array.isArray(m.events)) src.fail("events must be a list", ["events"]);
  const events = (m.events as unknown[]).map((e, i) => eventFrom(src, e, ["events", i], backend));
  const expect = parseExpect(src, m.expect);
  // NMI sites depend on the backend and design: check them now, with the event's position.
  const hostCpu = cpu;
  let nmiSites: readonly string[] | undefined;
  events.forEach((e, i) => {
    if (e.kind !== "nmi") return;
    nmiSites ??= listNmiSites(resolveConfig({ backend, design, host: { cpu: hostCpu, kernelApx: host.kernelApx === true }, guest: { apx: guest.apx !== false }, pre: m.pre === true }));
    if (!nmiSites.includes(e.site as string)) {
      src.fail(`"${String(e.site)}" is not an NMI-open site of ${backend.name} under ${design.name} (known: ${nmiSites.join(", ")})`, ["events", i]);
    }
  });
  return {
    name, description, file, backend, design,
    host: { cpu, kernelApx: host.kernelApx === true },
    guest: { apx: guest.apx !== false },
    options: parseOptions(src, m.options),
    pre: m.pre === true,
    events,
    ...(expect ? { expect } : {}),
  };
}

/** Location of event `index` in a scenario file (for messages about a step). */
export function eventLocation(text: string, file: string, index: number) {
  return new YamlSource(text, file).where(["events", index]);
}

export { ScenarioError };
