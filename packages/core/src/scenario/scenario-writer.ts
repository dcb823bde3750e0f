/**
 * Writes a scenario file (the checker emits counterexamples this way, so a bug found once becomes a
 * regression test). Built-in designs are written by name, others inline.
 */
import { stringify } from "yaml";
import { builtinDesign, type Design } from "../kvm/designs.js";
import type { KvmxEvent } from "../kvm/events.js";
import type { ModelOptions } from "../model-options.js";
import type { InvariantName } from "../kvm/explorable.js";
import type { Variant } from "../kvm/variants.js";
import { variantToData } from "./variant-file.js";

export interface ScenarioSpec {
  name: string;
  description?: string;
  backend: string;
  design: Design | string;
  /** Written inline (kvm/variants.ts); absent: the default model. */
  variant?: Variant;
  host: { cpu: string; kernelApx: boolean };
  guest: { apx: boolean };
  options?: Partial<ModelOptions>;
  pre?: boolean;
  events: readonly KvmxEvent[];
  expect?: { ok: true } | { violations: readonly InvariantName[] };
}

export function scenarioToYaml(s: ScenarioSpec, headerComment?: string): string {
  const design = typeof s.design === "string" ? s.design : builtinDesign(s.design.name) === s.design ? s.design.name : s.design;
  const doc: Record<string, unknown> = {
    name: s.name,
    ...(s.description ? { description: s.description } : {}),
    backend: s.backend,
    design,
    ...(s.variant ? { variant: variantToData(s.variant) } : {}),
    host: s.host,
    guest: s.guest,
    ...(s.options && Object.keys(s.options).length ? { options: s.options } : {}),
    ...(s.pre ? { pre: true } : {}),
    events: s.events.map((e) => ({ ...e })),
    ...(s.expect ? { expect: s.expect } : {}),
  };
  const body = stringify(doc, { lineWidth: 120, flowCollectionPadding: true, collectionStyle: "any" });
  const head = headerComment ? headerComment.split("\n").map((l) => `# ${l}`.trimEnd()).join("\n") + "\n" : "";
  return head + body;
}
