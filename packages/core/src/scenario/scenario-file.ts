/**
 * Scenario files (docs/model.md#scenarios): a backend, a design, host and guest, options, events,
 * and what they expect. Parsed from YAML with every error at file:line:column; backends come from a
 * registry the caller passes (core knows no vendor). Events are the KvmxEvent JSON shape, or a terse
 * string "kind arg…" (e.g. `guest-write r16 0x1111`, `nmi vmx:handle-nmi`, `migrate c-xfeatures`); a
 * mapping event may carry its own `expect:` (expectations.ts), a terse one through `{ do, expect }`.
 */
import { dirname, resolve } from "node:path";
import { readFileSync } from "node:fs";
import { ScenarioError, formatLocation } from "../errors.js";
import { ASSUMPTIONS, type AssumptionName, type ModelOptions } from "../model-options.js";
import { gprIndex } from "../cpu/gpr.js";
import type { CpuProfile } from "../cpu/cpu-profiles.js";
import { builtinDesign, type Design } from "../kvm/designs.js";
import { EVENT_KINDS, type KvmxEvent } from "../kvm/events.js";
import type { VendorOps } from "../kvm/vendor-ops.js";
import { KVM_REGS_FIELDS, KVM_SYNC_X86 } from "../kvm/uapi-ops.js";
import { designFromYaml, parseDesignFile } from "./design-file.js";
import { parseVariantFile, variantFromYaml } from "./variant-file.js";
import { FEATURE_EVENTS } from "../kvm/feature-events.js";
import type { Variant } from "../kvm/variants.js";
import { resolveConfig } from "../kvm/machine.js";
import { listNmiSites } from "../kvm/enter-guest.js";
import { YamlSource, expectMap, expectString, type YamlPath } from "./yaml-source.js";
import { hostCpuFromYaml } from "./host-cpu.js";
import { parseExpectation, type Expectation } from "./expectations.js";

/** A scenario's or an event's expectations (expectations.ts). */
export type ScenarioExpect = Expectation;

export interface Scenario {
  name: string;
  description: string;
  file: string;
  backend: VendorOps;
  design: Design;
  /** KVM's code as the scenario runs it (kvm/variants.ts); absent: the default model. */
  variant?: Variant;
  /** `cpu` is the profile's name; `profile` is set when the scenario built one (a CPUID dump file or inline entries). */
  host: { cpu: string; kernelApx: boolean; profile?: CpuProfile };
  guest: { apx: boolean };
  options: Partial<ModelOptions>;
  pre: boolean;
  events: KvmxEvent[];
  /** What the whole scenario expects: violations over the run, the state after the last event. */
  expect?: ScenarioExpect;
  /** Each event's own `expect:` (undefined where an event has none), parallel to `events`. */
  eventExpects: (ScenarioExpect | undefined)[];
  /** Where each event is written (file:line:column), parallel to `events`. */
  eventAt: string[];
}

export interface ParseScenarioOptions {
  /** Backend registry: name → vendor ops (the CLI's backends.ts). */
  backend(name: string): VendorOps | undefined;
  /** Reads a design file a scenario names by path (default: the file system, relative to the scenario). */
  readFile?(path: string): string;
}

const SCENARIO_KEYS = ["name", "description", "backend", "design", "variant", "host", "guest", "options", "pre", "events", "expect"] as const;

/** Fields each event kind takes (beyond `kind`), and which are required. Events that are one KVM_RUN also take `syncRegs`. */
const EVENT_FIELDS: Record<string, { required: readonly string[]; optional: readonly string[] }> = {
  "guest-xsetbv": { required: ["value"], optional: ["syncRegs"] },
  "guest-write": { required: ["reg", "value"], optional: ["syncRegs"] },
  "guest-read": { required: ["reg"], optional: ["syncRegs"] },
  "guest-wrmsrns-imm": { required: ["reg"], optional: ["msr", "value", "syncRegs"] },
  "guest-rdmsr-imm": { required: ["reg"], optional: ["msr", "syncRegs"] },
  "guest-cpuid": { required: [], optional: ["leaf", "subleaf", "syncRegs"] },
  "guest-hlt": { required: [], optional: ["syncRegs"] },
  "guest-io": { required: [], optional: ["syncRegs"] },
  "guest-mov-cr4": { required: ["value"], optional: [] },
  nmi: { required: ["site"], optional: [] },
  preempt: { required: [], optional: ["syncRegs"] },
  "vm-fail": { required: [], optional: ["syncRegs"] },
  "get-xsave": { required: [], optional: [] },
  "set-xsave": { required: [], optional: ["apx", "xstateBv"] },
  "get-regs": { required: [], optional: [] },
  "set-regs": { required: ["regs"], optional: [] },
  "set-xcrs": { required: ["xcr0"], optional: [] },
  migrate: { required: [], optional: ["design"] },
  reset: { required: [], optional: [] },
  init: { required: [], optional: [] },
};

// The events of the model features (kvm/feature-events.ts); their machine needs the features in its variant.
for (const [kind, f] of Object.entries(FEATURE_EVENTS)) EVENT_FIELDS[kind] = { required: f.required, optional: f.optional };

/** Positional fields of the string shorthand, per kind. */
const SHORTHAND: Record<string, readonly string[]> = {
  "guest-xsetbv": ["value"], "guest-write": ["reg", "value"], "guest-read": ["reg"],
  "guest-wrmsrns-imm": ["reg", "value"], "guest-rdmsr-imm": ["reg"], "guest-cpuid": ["leaf", "subleaf"], "guest-mov-cr4": ["value"],
  nmi: ["site"], "set-xcrs": ["xcr0"], migrate: ["design"],
  ...Object.fromEntries(Object.entries(FEATURE_EVENTS).map(([kind, f]) => [kind, f.shorthand])),
};

/** KVM_SYNC_X86_* classes: the model loads and stores REGS; SREGS and EVENTS belong to @kvmx/uapi's model. */
const SYNC_VALID_FIELDS = BigInt(KVM_SYNC_X86.REGS | KVM_SYNC_X86.SREGS | KVM_SYNC_X86.EVENTS);
const SYNC_UNMODELLED = BigInt(KVM_SYNC_X86.SREGS | KVM_SYNC_X86.EVENTS);

function syncRegsFrom(src: YamlSource, raw: unknown, path: YamlPath): Record<string, unknown> {
  const m = expectMap(src, raw, path, ["valid", "dirty", "regs"], "syncRegs");
  const out: Record<string, unknown> = {};
  const bits: Partial<Record<"valid" | "dirty", bigint>> = {};
  for (const k of ["valid", "dirty"] as const) {
    if (m[k] === undefined) continue;
    bits[k] = src.u64(m[k], [...path, k], `syncRegs ${k}`);
    out[k] = `0x${bits[k]!.toString(16)}`;
  }
  // Bits outside the three classes make KVM_RUN fail with -EINVAL (a scenario may want that); the
  // SREGS/EVENTS classes themselves would load or store state only the uapi model has.
  const all = (bits.valid ?? 0n) | (bits.dirty ?? 0n);
  if ((all & SYNC_UNMODELLED) !== 0n && (all & ~SYNC_VALID_FIELDS) === 0n) {
    const k = ((bits.valid ?? 0n) & SYNC_UNMODELLED) !== 0n ? "valid" : "dirty";
    src.fail("syncRegs: only the REGS class (1) is modelled here; SREGS (2) and EVENTS (4) belong to @kvmx/uapi's model", [...path, k]);
  }
  if (m.regs !== undefined) {
    const r = expectMap(src, m.regs, [...path, "regs"], KVM_REGS_FIELDS, "syncRegs regs (struct kvm_regs)");
    out.regs = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, `0x${src.u64(v, [...path, "regs", k], `syncRegs regs ${k}`).toString(16)}`]));
  }
  return out;
}

/** A vendor event kind, `vendor:name` (e.g. vmx-nested:vmlaunch): what a backend's vendorEvents alphabet produces. */
const VENDOR_EVENT_KIND = /^[a-z0-9][a-z0-9-]*:[a-z0-9][a-z0-9-]*$/;

/** One event of `events:` and its own `expect:` (a mapping event's key, or `{ do: "terse", expect }`). */
function eventFrom(src: YamlSource, raw: unknown, path: YamlPath, backend: VendorOps): { event: KvmxEvent; expect?: unknown } {
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw) && "do" in raw) {
    const m = expectMap(src, raw, path, ["do", "expect"], "event");
    if (typeof m.do !== "string") src.fail('do: the event in its terse form, e.g. do: "guest-read r16"', [...path, "do"]);
    return { event: terseEvent(src, m.do as string, [...path, "do"], backend), ...(m.expect !== undefined ? { expect: m.expect } : {}) };
  }
  if (typeof raw === "string") return { event: terseEvent(src, raw, path, backend) };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return src.fail("an event is a mapping with `kind`, or a string like `guest-write r16 0x1111`", path);
  }
  const { expect, ...obj } = raw as Record<string, unknown>;
  const kind = obj.kind;
  if (typeof kind !== "string") src.fail("event needs a `kind`", path);
  if (!(kind in EVENT_FIELDS)) {
    if (VENDOR_EVENT_KIND.test(kind)) return { event: vendorEvent(src, obj, [...path, "kind"], backend), ...(expect !== undefined ? { expect } : {}) };
    src.fail(`unknown event kind "${kind}" (known: ${EVENT_KINDS.join(", ")})`, [...path, "kind"]);
  }
  const spec = EVENT_FIELDS[kind]!;
  expectMap(src, obj, path, ["kind", ...spec.required, ...spec.optional, "expect"], `event "${kind}"`);
  return { event: checkedEvent(src, obj, path, (f) => [...path, f]), ...(expect !== undefined ? { expect } : {}) };
}

/** The terse form "kind arg…" at `path`. */
function terseEvent(src: YamlSource, text: string, path: YamlPath, backend: VendorOps): KvmxEvent {
  const [kind, ...args] = text.trim().split(/\s+/);
  if (kind && VENDOR_EVENT_KIND.test(kind)) {
    // Vendor events carry no positional fields; their extra fields need the mapping form.
    if (args.length > 0) src.fail(`vendor event "${kind}" takes no arguments in the string form (use { kind: ${kind}, ... })`, path);
    return vendorEvent(src, { kind }, path, backend);
  }
  if (!kind || !(kind in EVENT_FIELDS)) src.fail(`unknown event ${JSON.stringify(kind)} (known: ${EVENT_KINDS.join(", ")}, or a backend's vendor:event)`, path);
  const names = SHORTHAND[kind] ?? [];
  if (args.length > names.length) src.fail(`event "${kind}" takes at most ${names.length} argument(s): ${names.join(" ") || "none"}`, path);
  const obj: Record<string, unknown> = { kind };
  args.forEach((a, i) => (obj[names[i]!] = a));
  return checkedEvent(src, obj, path, () => path);
}

/** Validates and normalises an event's fields (u64 fields as exact "0x…"/decimal strings, MSR and CPUID leaf as numbers). */
function checkedEvent(src: YamlSource, obj: Record<string, unknown>, path: YamlPath, at: (f: string) => YamlPath): KvmxEvent {
  const kind = obj.kind as string;
  const spec = EVENT_FIELDS[kind]!;
  for (const f of spec.required) if (obj[f] === undefined) src.fail(`event "${kind}" needs \`${f}\``, path);
  if (obj.reg !== undefined && (typeof obj.reg !== "string" || gprIndex(obj.reg) === undefined)) src.fail(`"${String(obj.reg)}" is not a GPR name (rax … r31)`, at("reg"));
  for (const f of ["value", "xcr0", "xstateBv"]) {
    if (obj[f] === undefined) continue;
    const text = src.sourceText(at(f), obj[f]);
    src.u64(text, at(f), `${kind} ${f}`);
    obj[f] = text;
  }
  if (obj.msr !== undefined) obj.msr = src.u32(obj.msr, at("msr"), "msr");
  for (const f of ["leaf", "subleaf"]) if (obj[f] !== undefined) obj[f] = src.u32(obj[f], at(f), `guest-cpuid ${f}`);
  if (obj.apx !== undefined) {
    if (!Array.isArray(obj.apx) || obj.apx.length > 16) src.fail("apx must be a list of up to 16 values (R16..R31)", at("apx"));
    obj.apx = (obj.apx as unknown[]).map((v, i) => {
      const text = src.sourceText([...at("apx"), i], v);
      src.u64(text, [...at("apx"), i], `set-xsave apx[${i}]`);
      return text;
    });
  }
  if (obj.regs !== undefined) {
    const r = expectMap(src, obj.regs, at("regs"), KVM_REGS_FIELDS, "set-regs regs");
    obj.regs = Object.fromEntries(Object.entries(r).map(([k, v]) => {
      const text = src.sourceText([...at("regs"), k], v);
      src.u64(text, [...at("regs"), k], `set-regs ${k}`);
      return [k, text];
    }));
  }
  if (obj.syncRegs !== undefined) obj.syncRegs = syncRegsFrom(src, obj.syncRegs, at("syncRegs"));
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
  let variant: Variant | undefined;
  if (m.variant !== undefined) {
    // KVM's code as this scenario runs it (docs/model.md#variants): a variant file, or inline.
    const vOpts = { backend, pre: m.pre === true, ...(opts.readFile ? { readFile: opts.readFile } : {}) };
    if (typeof m.variant === "string") {
      const path = resolve(dirname(file), m.variant);
      let text2: string;
      try {
        text2 = (opts.readFile ?? ((p: string) => readFileSync(p, "utf8")))(path);
      } catch (e) {
        return src.fail(`cannot read variant file ${path}: ${(e as Error).message}`, ["variant"]);
      }
      variant = parseVariantFile(text2, path, vOpts);
    } else variant = variantFromYaml(src, m.variant, ["variant"], vOpts);
  }
  const host = expectMap(src, m.host ?? {}, ["host"], ["cpu", "kernelApx"], "host");
  const guest = expectMap(src, m.guest ?? {}, ["guest"], ["apx"], "guest");
  const options = parseOptions(src, m.options);
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  const hostCpu = hostCpuFromYaml(src, host.cpu, ["host", "cpu"], options, readFile);
  if (host.kernelApx !== undefined && typeof host.kernelApx !== "boolean") src.fail("kernelApx must be true or false", ["host", "kernelApx"]);
  if (guest.apx !== undefined && typeof guest.apx !== "boolean") src.fail("apx must be true or false", ["guest", "apx"]);
  if (m.pre !== undefined && typeof m.pre !== "boolean") src.fail("pre must be true or false", ["pre"]);
  if (!Array.isArray(m.events)) src.fail("events must be a list", ["events"]);
  const parsed = (m.events as unknown[]).map((e, i) => eventFrom(src, e, ["events", i], backend));
  const events = parsed.map((p) => p.event);
  const eventExpects = parsed.map((p, i) => (p.expect === undefined ? undefined : parseExpectation(src, p.expect, ["events", i, "expect"], { backend, eventKind: p.event.kind })));
  const expect = m.expect === undefined ? undefined : parseExpectation(src, m.expect, ["expect"], { backend });
  // NMI sites depend on the backend and design: check them now, with the event's position.
  let nmiSites: readonly string[] | undefined;
  events.forEach((e, i) => {
    if (e.kind !== "nmi") return;
    nmiSites ??= listNmiSites(resolveConfig({ backend, design, host: { cpu: hostCpu.profile ?? hostCpu.name, kernelApx: host.kernelApx === true }, guest: { apx: guest.apx !== false }, pre: m.pre === true }));
    if (!nmiSites.includes(e.site as string)) {
      src.fail(`"${String(e.site)}" is not an NMI-open site of ${backend.name} under ${design.name} (known: ${nmiSites.join(", ")})`, ["events", i]);
    }
  });
  return {
    name, description, file, backend, design,
    ...(variant ? { variant } : {}),
    host: { cpu: hostCpu.name, kernelApx: host.kernelApx === true, ...(hostCpu.profile ? { profile: hostCpu.profile } : {}) },
    guest: { apx: guest.apx !== false },
    options,
    pre: m.pre === true,
    events,
    ...(expect ? { expect } : {}),
    eventExpects,
    eventAt: events.map((_, i) => formatLocation(src.where(["events", i]))),
  };
}

/** Location of event `index` in a scenario file (for messages about a step). */
export function eventLocation(text: string, file: string, index: number) {
  return new YamlSource(text, file).where(["events", index]);
}

export { ScenarioError };
