import { createHash } from "node:crypto";
import { InputError, profileFromCpuid, type CpuidEntry, type CpuProfile } from "@kvmx/core";
import type { Kvm, KvmCpuidEntry2 } from "../api.js";
import { KVM_CAP, type KvmCapName } from "../caps.js";
import type { HostDescription, HostKind } from "../host/host-description.js";
import { HOST_KINDS } from "../host/host-description.js";
import { probeKvm } from "../host/probe.js";
import { compareObservations, type DiffReport } from "./compare.js";
import type { HostQuirk, PendingModelBug } from "./host-quirks.js";
import { observeScenario, type StepObservation } from "./observe.js";
import { parseRealScenario, type RealScenario } from "./real-scenario.js";

/**
 * A transcript is what one real kernel showed for a list of differential scenarios, saved so the
 * model can be compared with it anywhere, with no device (`kvmx diff --replay`). It carries the
 * host (kernel release, CPU model, host kind), what the kernel reports about itself (capabilities,
 * KVM_GET_SUPPORTED_CPUID: the model side is configured from these), and per scenario its source
 * text and every step's observations.
 */
export const TRANSCRIPT_SCHEMA_VERSION = 1;

/** What the kernel reports about itself: the model side is configured from these. */
export interface KernelFacts {
  readonly apiVersion: number;
  /** KVM_CHECK_EXTENSION of every capability kvmx knows (XSAVE2 on a VM fd). */
  readonly caps: Readonly<Record<KvmCapName, number>>;
  readonly supportedCpuid: readonly CpuidRow[];
}

/** A kvm_cpuid_entry2 without its padding. */
export type CpuidRow = CpuidEntry;

export interface RecordedStep {
  readonly index: number;
  readonly kind: string;
  readonly line?: number;
  readonly obs: Readonly<Record<string, string>>;
}

export interface RecordedScenario {
  /** The path it was recorded from, relative to the working directory then. */
  readonly file: string;
  readonly name: string;
  /** sha256 of `text`: a transcript is stale when the file's text no longer hashes to it. */
  readonly sha256: string;
  readonly text: string;
  readonly steps: readonly RecordedStep[];
}

export interface Transcript {
  readonly schemaVersion: typeof TRANSCRIPT_SCHEMA_VERSION;
  readonly recordedBy: string;
  readonly host: HostDescription;
  readonly facts: KernelFacts;
  readonly scenarios: readonly RecordedScenario[];
}

export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

const row = (e: KvmCpuidEntry2): CpuidRow => ({ function: e.function, index: e.index, flags: e.flags, eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx });
export const cpuidEntries = (rows: readonly CpuidRow[]): KvmCpuidEntry2[] => rows.map((r) => ({ ...r, padding: [0, 0, 0] }));

export function kernelFacts(kvm: Kvm): KernelFacts {
  const p = probeKvm(kvm);
  return { apiVersion: p.apiVersion, caps: p.caps, supportedCpuid: p.cpuid.map(row) };
}

/**
 * The profile both sides cut XSAVE images with, and the model's host CPU when configured from the
 * kernel: KVM_GET_SUPPORTED_CPUID is the CPU as KVM lets guests see it (docs/facts.md#supported-xcr0).
 */
export function profileOfFacts(facts: KernelFacts, host: HostDescription): CpuProfile {
  return profileFromCpuid(facts.supportedCpuid, { name: `kvm-${host.kernel}`, description: `KVM_GET_SUPPORTED_CPUID of ${host.kernel} on ${host.cpuModel}` });
}

/** Runs each scenario on `kvm` and keeps what it showed, with the host and the kernel's facts. */
export function recordTranscript(
  kvm: Kvm,
  host: HostDescription,
  scenarios: readonly { readonly file: string; readonly text: string }[],
  recordedBy: string,
): Transcript {
  const facts = kernelFacts(kvm);
  const profile = profileOfFacts(facts, host);
  return {
    schemaVersion: TRANSCRIPT_SCHEMA_VERSION,
    recordedBy,
    host,
    facts,
    scenarios: scenarios.map(({ file, text }) => {
      const s = parseRealScenario(text, file);
      const obs = observeScenario(kvm, s, profile);
      return {
        file,
        name: s.name,
        sha256: sha256(text),
        text,
        steps: obs.map((o) => ({ index: o.index, kind: o.kind, ...(o.at.line !== undefined ? { line: o.at.line } : {}), obs: o.obs })),
      };
    }),
  };
}

function fail(file: string, what: string): never {
  throw new InputError(`${file}: not a kvmx transcript: ${what}`, { file });
}

/** Reads a transcript (JSON); anything malformed is an InputError naming the file. */
export function parseTranscript(text: string, file: string): Transcript {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (err) {
    fail(file, `invalid JSON (${(err as Error).message})`);
  }
  const t = j as Partial<Transcript>;
  if (typeof t !== "object" || t === null) fail(file, "not an object");
  if (t.schemaVersion !== TRANSCRIPT_SCHEMA_VERSION) fail(file, `schemaVersion must be ${TRANSCRIPT_SCHEMA_VERSION}`);
  const h = t.host as Partial<HostDescription> | undefined;
  if (!h || typeof h.kernel !== "string" || !(HOST_KINDS as readonly string[]).includes(h.hostKind as string)) fail(file, "host.kernel and host.hostKind are required");
  const f = t.facts as Partial<KernelFacts> | undefined;
  if (!f || !Array.isArray(f.supportedCpuid) || typeof f.caps !== "object") fail(file, "facts.caps and facts.supportedCpuid are required");
  for (const name of Object.keys(f.caps!)) if (!Object.hasOwn(KVM_CAP, name)) fail(file, `unknown capability ${name}`);
  if (!Array.isArray(t.scenarios)) fail(file, "scenarios must be a list");
  for (const s of t.scenarios!) {
    if (typeof s?.text !== "string" || typeof s.file !== "string" || !Array.isArray(s.steps)) fail(file, "each scenario needs file, text and steps");
  }
  return t as Transcript;
}

/** The scenario as recorded (parsed from the transcript's copy of its text). */
export const recordedScenario = (r: RecordedScenario): RealScenario => parseRealScenario(r.text, r.file);

/**
 * Compares `model` with a recorded scenario: the model runs the recorded text, and each step's
 * observations are compared key by key with the kernel's.
 */
export function replayScenario(
  r: RecordedScenario,
  model: { readonly name: string; readonly kvm: Kvm },
  kernelName: string,
  profile: CpuProfile,
  quirks: readonly HostQuirk[],
  pending: readonly PendingModelBug[] = [],
): DiffReport {
  const scenario = recordedScenario(r);
  const left = observeScenario(model.kvm, scenario, profile);
  const right: StepObservation[] = scenario.steps.map((s, i) => ({ index: i, kind: s.kind, at: s.at, obs: r.steps[i]?.obs ?? {} }));
  return compareObservations(scenario, { name: model.name, obs: left }, { name: kernelName, obs: right }, quirks, pending);
}

/** "linux 6.12.117+deb12-amd64 (kvm_amd on an emulated CPU)" */
export const kernelLabel = (h: HostDescription): string => `linux ${h.kernel} (${h.hostKind})`;

export function isHostKind(s: string): s is HostKind {
  return (HOST_KINDS as readonly string[]).includes(s);
}
