/**
 * A corpus entry (corpus/<id>/entry.yaml): a known KVM bug, the upstream commit that fixed it, the
 * invariant it breaks, the machine and events that reach it, and KVM's code before and after the fix as
 * two variant files. Every error is a ScenarioError at file:line:column (core's YamlSource).
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  CPU_PROFILE_NAMES, EVENT_KINDS, INVARIANTS, YamlSource, builtinDesign, expectMap, expectString, isCpuProfileName, parseVariantFile,
  type AlphabetOptions, type CoreEventKind, type FeatureAlphabet, type InvariantName, type Variant, type VendorOps, type YamlPath,
} from "@kvmx/core";

export interface CorpusEntry {
  /** The directory name. */
  readonly id: string;
  readonly dir: string;
  readonly title: string;
  readonly commit: string;
  readonly kernel: string;
  readonly invariant: InvariantName;
  /** The bug, in this project's words. */
  readonly bug: string;
  /** How the model reaches it (optional). */
  readonly model?: string;
  readonly machine: {
    readonly backend: VendorOps;
    readonly design: string;
    readonly host: { readonly cpu: string; readonly kernelApx: boolean };
    readonly guest: { readonly apx: boolean };
  };
  readonly alphabet: AlphabetOptions;
  readonly preFix: { readonly file: string; readonly variant: Variant };
  readonly postFix: { readonly file: string; readonly variant: Variant };
  /** What the pre-fix run must find: this invariant, with a counterexample of at most this many events. */
  readonly expect: { readonly invariant: InvariantName; readonly maxLength: number };
}

const ENTRY_KEYS = ["title", "commit", "kernel", "invariant", "bug", "model", "machine", "alphabet", "preFix", "postFix", "expect"] as const;
const ALPHABET_KEYS = ["include", "exclude", "values", "egprs", "xcr0Values", "extra"] as const;
const EXTRA_KEYS = ["irq", "schedOut", "mce", "dr6", "cr3", "pkru", "xfd", "xstateBv", "cr4", "createVcpu"] as const;

export interface LoadCorpusOptions {
  /** Backend registry (the CLI's): name → vendor ops. */
  backend(name: string): VendorOps | undefined;
  readFile?(path: string): string;
}

function invariant(src: YamlSource, v: unknown, path: YamlPath): InvariantName {
  if (typeof v !== "string" || !Object.hasOwn(INVARIANTS, v)) src.fail(`unknown invariant ${JSON.stringify(v)} (known: ${Object.keys(INVARIANTS).join(", ")})`, path);
  return v as InvariantName;
}

function strings(src: YamlSource, v: unknown, path: YamlPath, what: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) src.fail(`${what} must be a list of strings (quote hex values: "0x3")`, path);
  return v as string[];
}

function kinds(src: YamlSource, v: unknown, path: YamlPath): CoreEventKind[] {
  const list = strings(src, v, path, "event kinds");
  list.forEach((k, i) => {
    if (!(EVENT_KINDS as readonly string[]).includes(k)) src.fail(`unknown event kind "${k}" (known: ${EVENT_KINDS.join(", ")})`, [...path, i]);
  });
  return list as CoreEventKind[];
}

function alphabetFrom(src: YamlSource, raw: unknown, path: YamlPath): AlphabetOptions {
  const m = expectMap(src, raw ?? {}, path, ALPHABET_KEYS, "alphabet");
  const out: { -readonly [K in keyof AlphabetOptions]: AlphabetOptions[K] } = {};
  if (m.include !== undefined) out.include = kinds(src, m.include, [...path, "include"]);
  if (m.exclude !== undefined) out.exclude = kinds(src, m.exclude, [...path, "exclude"]);
  for (const k of ["values", "egprs", "xcr0Values"] as const) if (m[k] !== undefined) out[k] = strings(src, m[k], [...path, k], k);
  if (m.extra !== undefined) {
    const e = expectMap(src, m.extra, [...path, "extra"], EXTRA_KEYS, "alphabet extra");
    const x: Record<string, unknown> = {};
    for (const k of ["irq", "schedOut"] as const) {
      if (e[k] === undefined) continue;
      x[k] = typeof e[k] === "boolean" ? e[k] : strings(src, e[k], [...path, "extra", k], `${k} sites`);
    }
    for (const k of ["mce", "createVcpu"] as const) {
      if (e[k] === undefined) continue;
      if (typeof e[k] !== "boolean") src.fail(`${k} must be true or false`, [...path, "extra", k]);
      x[k] = e[k];
    }
    for (const k of ["dr6", "cr3", "pkru", "xfd", "xstateBv", "cr4"] as const) if (e[k] !== undefined) x[k] = strings(src, e[k], [...path, "extra", k], `${k} values`);
    out.extra = x as FeatureAlphabet;
  }
  return out;
}

/** Parses one entry.yaml; `dir` resolves its variant files. */
export function parseCorpusEntry(text: string, file: string, dir: string, id: string, opts: LoadCorpusOptions): CorpusEntry {
  const src = new YamlSource(text, file);
  const m = expectMap(src, src.data, [], ENTRY_KEYS, "corpus entry");
  const title = expectString(src, m.title, ["title"], "title");
  const commit = expectString(src, m.commit, ["commit"], "commit");
  if (!/^[0-9a-f]{12,40}$/.test(commit)) src.fail("commit must be an abbreviated or full commit hash (12+ hex digits)", ["commit"]);
  const kernel = expectString(src, m.kernel, ["kernel"], "kernel");
  const inv = invariant(src, m.invariant, ["invariant"]);
  const bug = expectString(src, m.bug, ["bug"], "bug");
  const model = m.model === undefined ? undefined : expectString(src, m.model, ["model"], "model");
  const mm = expectMap(src, m.machine, ["machine"], ["backend", "design", "host", "guest"], "machine");
  const backendName = expectString(src, mm.backend, ["machine", "backend"], "backend");
  const backend = opts.backend(backendName);
  if (!backend) src.fail(`unknown backend "${backendName}"`, ["machine", "backend"]);
  const design = expectString(src, mm.design, ["machine", "design"], "design");
  if (!builtinDesign(design)) src.fail(`unknown design "${design}" (a corpus entry names a built-in design)`, ["machine", "design"]);
  const host = expectMap(src, mm.host ?? {}, ["machine", "host"], ["cpu", "kernelApx"], "host");
  const cpu = expectString(src, host.cpu ?? "spr", ["machine", "host", "cpu"], "host cpu");
  if (!isCpuProfileName(cpu)) src.fail(`unknown CPU profile "${cpu}" (known: ${CPU_PROFILE_NAMES.join(", ")})`, ["machine", "host", "cpu"]);
  if (host.kernelApx !== undefined && typeof host.kernelApx !== "boolean") src.fail("kernelApx must be true or false", ["machine", "host", "kernelApx"]);
  const guest = expectMap(src, mm.guest ?? {}, ["machine", "guest"], ["apx"], "guest");
  if (guest.apx !== undefined && typeof guest.apx !== "boolean") src.fail("apx must be true or false", ["machine", "guest", "apx"]);
  const alphabet = alphabetFrom(src, m.alphabet, ["alphabet"]);
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  const variant = (key: "preFix" | "postFix") => {
    const rel = expectString(src, m[key], [key], `${key} variant file`);
    const path = resolve(dir, rel);
    let vtext: string;
    try {
      vtext = readFile(path);
    } catch (e) {
      return src.fail(`cannot read ${key} variant ${path}: ${(e as Error).message}`, [key]);
    }
    return { file: path, variant: parseVariantFile(vtext, path, { backend: backend!, readFile }) };
  };
  const preFix = variant("preFix");
  const postFix = variant("postFix");
  const e = expectMap(src, m.expect, ["expect"], ["invariant", "maxLength"], "expect");
  const maxLength = e.maxLength;
  if (typeof maxLength !== "number" || !Number.isInteger(maxLength) || maxLength < 1) src.fail("maxLength must be a positive integer", ["expect", "maxLength"]);
  return {
    id, dir, title, commit, kernel, invariant: inv, bug, ...(model ? { model } : {}),
    machine: { backend: backend!, design, host: { cpu, kernelApx: host.kernelApx === true }, guest: { apx: guest.apx === true } },
    alphabet, preFix, postFix,
    expect: { invariant: invariant(src, e.invariant, ["expect", "invariant"]), maxLength: maxLength as number },
  };
}

/** Every entry of a corpus directory (one sub-directory with an entry.yaml each), in name order. */
export function loadCorpus(dir: string, opts: LoadCorpusOptions): CorpusEntry[] {
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory())
    .sort()
    .map((id) => {
      const file = join(dir, id, "entry.yaml");
      return parseCorpusEntry(readFile(file), file, join(dir, id), id, opts);
    });
}
