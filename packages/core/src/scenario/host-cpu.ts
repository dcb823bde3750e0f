/**
 * The host CPU of a scenario (`host.cpu`): a built-in profile name; a CPUID dump file (JSON or YAML:
 * kvm_cpuid_entry2-shaped entries, as a list or under `cpuid:` — the shape of `kvmx probe --json`);
 * or a mapping `{ base?, name?, cpuid: [entries] }` whose entries change the base's leaf/sub-leaf
 * (the registers they name; a new leaf is added). Every profile goes through profileFromCpuid
 * (leaf 0xD sizes, the MPX/APX exclusion — docs/facts.md#apx-mpx-exclusion), and every error points
 * at file:line:column of the entry, register or key.
 */
import { basename, dirname, resolve } from "node:path";
import { InputError } from "../errors.js";
import { KVM_CPUID_FLAG_SIGNIFCANT_INDEX, type CpuidEntry } from "../cpu/cpuid.js";
import { CPU_PROFILES, CPU_PROFILE_NAMES, isCpuProfileName, profileFromCpuid, type CpuProfile } from "../cpu/cpu-profiles.js";
import { withOptions, type ModelOptions } from "../model-options.js";
import { YamlSource, expectMap, type YamlPath } from "./yaml-source.js";

export interface ScenarioHostCpu {
  /** What `kvmx run` prints: the built-in name, the dump file's name, or the mapping's `name`. */
  readonly name: string;
  /** The profile when it is not a plain built-in name (those are resolved with the scenario's options). */
  readonly profile?: CpuProfile;
}

const ENTRY_KEYS = ["function", "index", "flags", "eax", "ebx", "ecx", "edx"] as const;
const REGS = ["eax", "ebx", "ecx", "edx"] as const;
const HOST_CPU_KEYS = ["base", "name", "cpuid"] as const;

/** A CPUID entry as written: the registers it names (the others come from the base, or are 0). */
interface EntryPatch {
  readonly function: number;
  readonly index: number;
  readonly flags: number | undefined;
  readonly regs: Partial<Record<(typeof REGS)[number], number>>;
}

function entryPatches(src: YamlSource, raw: unknown, path: YamlPath): EntryPatch[] {
  if (!Array.isArray(raw)) return src.fail("cpuid must be a list of entries { function, index?, flags?, eax?, ebx?, ecx?, edx? }", path);
  return raw.map((e, i) => {
    const p = [...path, i];
    const m = expectMap(src, e, p, ENTRY_KEYS, "CPUID entry");
    if (m.function === undefined) src.fail("CPUID entry needs `function` (the leaf)", p);
    const regs: EntryPatch["regs"] = {};
    for (const r of REGS) if (m[r] !== undefined) regs[r] = src.u32(m[r], [...p, r], r);
    return {
      function: src.u32(m.function, [...p, "function"], "function"),
      index: m.index === undefined ? 0 : src.u32(m.index, [...p, "index"], "index"),
      // An entry that names its sub-leaf is sub-leaf significant unless it says otherwise.
      flags: m.flags !== undefined ? src.u32(m.flags, [...p, "flags"], "flags") : m.index !== undefined ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : undefined,
      regs,
    };
  });
}

/** `base` with `patches` applied: a patch changes the registers it names of the same leaf/sub-leaf, or adds an entry. */
function applyPatches(base: readonly CpuidEntry[], patches: readonly EntryPatch[]): CpuidEntry[] {
  const out = base.map((e) => ({ ...e }));
  for (const p of patches) {
    const i = out.findIndex((e) => e.function === p.function && e.index === p.index);
    if (i >= 0) out[i] = { ...out[i]!, ...p.regs, ...(p.flags !== undefined ? { flags: p.flags } : {}) };
    else out.push({ function: p.function, index: p.index, flags: p.flags ?? 0, eax: 0, ebx: 0, ecx: 0, edx: 0, ...p.regs });
  }
  return out;
}

/** A CPUID dump file: its entries, validated with positions in that file. */
function dumpFile(src: YamlSource, ref: string, path: YamlPath, readFile: (p: string) => string): { file: string; entries: CpuidEntry[] } {
  const file = resolve(dirname(src.file), ref);
  let text: string;
  try {
    text = readFile(file);
  } catch (e) {
    return src.fail(`cannot read CPUID dump ${file}: ${(e as Error).message}`, path);
  }
  const dump = new YamlSource(text, file);
  const list = Array.isArray(dump.data) ? { raw: dump.data, at: [] as YamlPath } : { raw: (dump.data as { cpuid?: unknown } | null)?.cpuid, at: ["cpuid"] as YamlPath };
  if (!Array.isArray(list.raw)) dump.fail("a CPUID dump is a list of entries, or a mapping with a `cpuid` list", []);
  return { file, entries: applyPatches([], entryPatches(dump, list.raw, list.at)) };
}

const looksLikeFile = (s: string): boolean => /[./\\]/.test(s);

/** A base: a built-in profile's CPUID (under the scenario's options), or a dump file's. */
function baseEntries(src: YamlSource, ref: unknown, path: YamlPath, options: ModelOptions, readFile: (p: string) => string): { name: string; entries: CpuidEntry[] } {
  if (typeof ref !== "string" || ref === "") return src.fail("base must be a CPU profile name or a CPUID dump file", path);
  if (isCpuProfileName(ref)) return { name: ref, entries: CPU_PROFILES[ref].cpuid(options) };
  if (looksLikeFile(ref)) {
    const d = dumpFile(src, ref, path, readFile);
    return { name: basename(d.file).replace(/\.(json|ya?ml)$/, ""), entries: d.entries };
  }
  return src.fail(`unknown CPU profile "${ref}" (known: ${CPU_PROFILE_NAMES.join(", ")}, or a CPUID dump file)`, path);
}

function profileAt(src: YamlSource, entries: CpuidEntry[], name: string, description: string, path: YamlPath): CpuProfile {
  try {
    return profileFromCpuid(entries, { name, description });
  } catch (e) {
    if (e instanceof InputError) return src.fail(e.message, path);
    throw e;
  }
}

/** Resolves `host.cpu` (default "dmr"). */
export function hostCpuFromYaml(
  src: YamlSource, raw: unknown, path: YamlPath, options: Partial<ModelOptions>, readFile: (p: string) => string,
): ScenarioHostCpu {
  const opts = withOptions(options);
  if (raw === undefined) return { name: "dmr" };
  if (typeof raw === "string") {
    if (isCpuProfileName(raw)) return { name: raw };
    if (!looksLikeFile(raw)) return src.fail(`unknown CPU profile "${raw}" (known: ${CPU_PROFILE_NAMES.join(", ")}, or a CPUID dump file)`, path);
    const b = baseEntries(src, raw, path, opts, readFile);
    return { name: b.name, profile: profileAt(src, b.entries, b.name, `CPUID dump ${raw}`, path) };
  }
  const m = expectMap(src, raw, path, HOST_CPU_KEYS, "host cpu");
  if (m.name !== undefined && (typeof m.name !== "string" || m.name === "")) src.fail("name must be a non-empty string", [...path, "name"]);
  if (m.base === undefined && m.cpuid === undefined) src.fail("host cpu needs `base` (a profile or dump file), `cpuid` (entries), or both", path);
  const base = m.base === undefined ? { name: "custom", entries: [] } : baseEntries(src, m.base, [...path, "base"], opts, readFile);
  const patches = m.cpuid === undefined ? [] : entryPatches(src, m.cpuid, [...path, "cpuid"]);
  const name = (m.name as string | undefined) ?? (patches.length ? `${base.name}+cpuid` : base.name);
  const description = `${base.name === "custom" ? "CPUID entries" : base.name} from the scenario${patches.length ? `, ${patches.length} CPUID entr${patches.length === 1 ? "y" : "ies"} changed` : ""}`;
  return { name, profile: profileAt(src, applyPatches(base.entries, patches), name, description, m.cpuid === undefined ? path : [...path, "cpuid"]) };
}
