/**
 * Variant files (YAML or JSON): KVM's code as data for the variant engine (kvm/variants.ts). Every
 * error — an unknown key, op, feature, step, sequence or condition, an edit that cannot apply on the
 * machine's backend — is a ScenarioError at file:line:column. A variant may start from another file
 * (`base:`): its features and edits come first.
 *
 *   name: v3.12-xcr0-loaded-flag
 *   description: one line
 *   source: Linux v3.12, arch/x86/kvm/x86.c
 *   base: lazy-xcr0.yaml            # optional
 *   features: [sched-out]
 *   steps:
 *     - move: x86:machine-check
 *       after: vmx:handle-nmi
 *     - drop: x86:load-host-xfeatures
 *     - insert: x86:put-guest-xcr0
 *       in: set-xcr                 # or before:/after: a step
 *     - replace: x86:load-guest-xfeatures
 *       with: x86:load-guest-xcr0
 *     - guard: x86:load-guest-dr6
 *       when: db-wont-exit          # a name, a list (all), or { any: [...] }; "!" negates
 *     - key: x86:load-guest-pkru
 *       on: guest-cr4-pke
 */
import { dirname, resolve } from "node:path";
import { readFileSync } from "node:fs";
import { stringify } from "yaml";
import { ScenarioError } from "../errors.js";
import { FEATURE_NAMES, type Feature } from "../kvm/features.js";
import { SEQUENCE_NAMES, conditionProblem, type SequenceName, type StepCondition } from "../kvm/steps.js";
import { resolveVariant, STEP_EDIT_OPS, type StepEdit, type StepEditOp, type Variant } from "../kvm/variants.js";
import type { VendorOps } from "../kvm/vendor-ops.js";
import { YamlSource, expectMap, expectString, type YamlPath } from "./yaml-source.js";

const VARIANT_KEYS = ["name", "description", "source", "base", "features", "steps"] as const;
/** The keys each op's edit takes besides the op itself. */
const EDIT_KEYS: Record<StepEditOp, readonly string[]> = {
  move: ["before", "after"],
  drop: ["in"],
  insert: ["before", "after", "in"],
  replace: ["with"],
  guard: ["when", "in"],
  key: ["on"],
};
const STEP_ID = /^(guest|[a-z0-9]+:[a-z0-9][a-z0-9-]*)$/;

export interface ParseVariantOptions {
  /** Reads a base variant file (default: the file system). */
  readFile?(path: string): string;
  /**
   * Check the edits against this backend's sequences now (resolveVariant), so an edit that cannot
   * apply is reported at its own line; default: only the file's own form is checked.
   */
  backend?: VendorOps;
  pre?: boolean;
}

function stepId(src: YamlSource, v: unknown, path: YamlPath): string {
  if (typeof v !== "string" || !STEP_ID.test(v)) src.fail(`${JSON.stringify(v)} is not a step id (like x86:load-guest-pkru or vmx:vcpu-run)`, path);
  return v as string;
}

function condition(src: YamlSource, v: unknown, path: YamlPath): StepCondition {
  const problem = conditionProblem(v);
  if (problem) src.fail(problem, path);
  return v as StepCondition;
}

function edit(src: YamlSource, raw: unknown, path: YamlPath): StepEdit {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) src.fail(`a step edit is a mapping with one of ${STEP_EDIT_OPS.join(", ")}`, path);
  const m = raw as Record<string, unknown>;
  const ops = STEP_EDIT_OPS.filter((op) => op in m);
  if (ops.length !== 1) {
    src.fail(ops.length === 0 ? `a step edit needs one of ${STEP_EDIT_OPS.join(", ")}` : `one op per step edit, not ${ops.join(" and ")}`, path);
  }
  const op = ops[0]!;
  expectMap(src, m, path, [op, ...EDIT_KEYS[op]], `${op} edit`);
  const at = src.where(path);
  const step = stepId(src, m[op], [...path, op]);
  const sequence = (): SequenceName | undefined => {
    if (m.in === undefined) return undefined;
    if (typeof m.in !== "string" || !(SEQUENCE_NAMES as readonly string[]).includes(m.in)) {
      src.fail(`unknown sequence ${JSON.stringify(m.in)} (known: ${SEQUENCE_NAMES.join(", ")})`, [...path, "in"]);
    }
    return m.in as SequenceName;
  };
  const where = (): { before?: string; after?: string } => {
    if (m.before !== undefined && m.after !== undefined) src.fail("give before: or after:, not both", [...path, "after"], true);
    return {
      ...(m.before !== undefined ? { before: stepId(src, m.before, [...path, "before"]) } : {}),
      ...(m.after !== undefined ? { after: stepId(src, m.after, [...path, "after"]) } : {}),
    };
  };
  switch (op) {
    case "move": {
      const w = where();
      if (!w.before && !w.after) src.fail("move needs before: or after:", path);
      return { op, step, ...w, at };
    }
    case "drop": {
      const seq = sequence();
      return { op, step, ...(seq ? { in: seq } : {}), at };
    }
    case "insert": {
      const w = where();
      const seq = sequence();
      if (!w.before && !w.after && !seq) src.fail("insert needs before:, after: or in: (a sequence other than kvm-run, at its end)", path);
      return { op, step, ...w, ...(seq ? { in: seq } : {}), at };
    }
    case "replace":
      if (m.with === undefined) src.fail("replace needs with: (the step that takes its place)", path);
      return { op, step, with: stepId(src, m.with, [...path, "with"]), at };
    case "guard": {
      if (m.when === undefined) src.fail("guard needs when: (the condition the step runs under)", path);
      const seq = sequence();
      return { op, step, when: condition(src, m.when, [...path, "when"]), ...(seq ? { in: seq } : {}), at };
    }
    case "key":
      if (m.on === undefined) src.fail("key needs on: (the condition the step's own test becomes)", path);
      return { op, step, on: condition(src, m.on, [...path, "on"]), at };
  }
}

/** Validates a parsed variant object found at `path` of `src` (`file` resolves `base:`). */
export function variantFromYaml(src: YamlSource, obj: unknown, path: YamlPath = [], opts: ParseVariantOptions = {}): Variant {
  const m = expectMap(src, obj, path, VARIANT_KEYS, "variant");
  const name = expectString(src, m.name, [...path, "name"], "variant name");
  const description = expectString(src, m.description, [...path, "description"], "variant description");
  const source = m.source === undefined ? undefined : expectString(src, m.source, [...path, "source"], "variant source");
  let base: Variant | undefined;
  if (m.base !== undefined) {
    const rel = expectString(src, m.base, [...path, "base"], "base variant file");
    const file = resolve(dirname(src.file), rel);
    let text: string;
    try {
      text = (opts.readFile ?? ((p: string) => readFileSync(p, "utf8")))(file);
    } catch (e) {
      return src.fail(`cannot read base variant ${file}: ${(e as Error).message}`, [...path, "base"]);
    }
    base = parseVariantFile(text, file, { ...(opts.readFile ? { readFile: opts.readFile } : {}) });
  }
  const rawFeatures = m.features ?? [];
  if (!Array.isArray(rawFeatures)) src.fail("features must be a list", [...path, "features"]);
  const features = (rawFeatures as unknown[]).map((f, i) => {
    if (typeof f !== "string" || !(FEATURE_NAMES as readonly string[]).includes(f)) {
      src.fail(`unknown feature ${JSON.stringify(f)} (known: ${FEATURE_NAMES.join(", ")})`, [...path, "features", i]);
    }
    return f as Feature;
  });
  const rawSteps = m.steps ?? [];
  if (!Array.isArray(rawSteps)) src.fail("steps must be a list of edits", [...path, "steps"]);
  const steps = (rawSteps as unknown[]).map((s, i) => edit(src, s, [...path, "steps", i]));
  const variant: Variant = {
    name, description, ...(source ? { source } : {}),
    features: [...new Set([...(base?.features ?? []), ...features])],
    steps: [...(base?.steps ?? []), ...steps],
  };
  if (opts.backend) resolveVariant(variant, opts.backend, opts.pre ?? false);
  return variant;
}

/** Parses and validates a variant file (YAML or JSON text). */
export function parseVariantFile(text: string, file: string, opts: ParseVariantOptions = {}): Variant {
  const src = new YamlSource(text, file);
  return variantFromYaml(src, src.data, [], opts);
}

/** A variant as plain data (what a scenario file carries inline): no source positions. */
export function variantToData(v: Variant): Record<string, unknown> {
  return {
    name: v.name,
    description: v.description,
    ...(v.source ? { source: v.source } : {}),
    features: [...v.features],
    steps: v.steps.map((e) => {
      const { op, step, at: _at, ...rest } = e as StepEdit & { at?: unknown };
      return { [op]: step, ...rest };
    }),
  };
}

/** A variant file's text. */
export const variantToYaml = (v: Variant): string => stringify(variantToData(v), { lineWidth: 120, flowCollectionPadding: true });

export { ScenarioError };
