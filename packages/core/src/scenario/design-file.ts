/**
 * User-written designs (YAML or JSON): validated against the design schema (designs.ts) with
 * ScenarioError file:line:column for unknown anchors, ops, conditions, vias and targets. A valid
 * file yields a Design that runs exactly like a built-in.
 */
import {
  ACTION_OPS, ANCHOR_NAMES, CONDITIONS, MOVE_VIAS, PROTECTED_GUESTS, XCR0_TARGETS,
  type Condition, type Design, type DesignAction, type EgprHome,
} from "../kvm/designs.js";
import { YamlSource, expectMap, expectString, type YamlPath } from "./yaml-source.js";

const EGPR_HOMES: readonly EgprHome[] = ["regs", "fpstate", "hardware"];
const DESIGN_KEYS = ["name", "description", "source", "egprHome", "hardwareXcr0Switch", "protectedGuests", "actions"] as const;
const ACTION_KEYS = ["anchor", "op", "xcr0", "via", "when"] as const;

function oneOf<T extends string>(src: YamlSource, v: unknown, allowed: readonly T[], path: YamlPath, what: string): T {
  if (typeof v !== "string" || !allowed.includes(v as T)) src.fail(`unknown ${what} ${JSON.stringify(v)} (known: ${allowed.join(", ")})`, path);
  return v as T;
}

function condition(src: YamlSource, v: unknown, path: YamlPath): Condition {
  const s = typeof v === "string" ? v.trim() : v;
  const base = typeof s === "string" && s.startsWith("!") ? s.slice(1) : s;
  if (typeof base !== "string" || !(CONDITIONS as readonly string[]).includes(base) || s === "!always") {
    src.fail(`unknown condition ${JSON.stringify(v)} (known: ${CONDITIONS.join(", ")}, each negatable with "!")`, path);
  }
  return s as Condition;
}

/** Validates a parsed design object found at `path` of `src`. */
export function designFromYaml(src: YamlSource, obj: unknown, path: YamlPath = []): Design {
  const m = expectMap(src, obj, path, DESIGN_KEYS, "design");
  const name = expectString(src, m.name, [...path, "name"], "design name");
  const description = expectString(src, m.description, [...path, "description"], "design description");
  const source = expectString(src, m.source, [...path, "source"], "design source");
  const egprHome = oneOf(src, m.egprHome, EGPR_HOMES, [...path, "egprHome"], "egprHome");
  if (m.hardwareXcr0Switch !== undefined && typeof m.hardwareXcr0Switch !== "boolean") src.fail("hardwareXcr0Switch must be true or false", [...path, "hardwareXcr0Switch"]);
  const protectedGuests = m.protectedGuests === undefined ? undefined : oneOf(src, m.protectedGuests, PROTECTED_GUESTS, [...path, "protectedGuests"], "protectedGuests");
  const rawActions = m.actions ?? [];
  if (!Array.isArray(rawActions)) src.fail("actions must be a list", [...path, "actions"]);
  const actions: DesignAction[] = rawActions.map((a, i) => {
    const p = [...path, "actions", i];
    const am = expectMap(src, a, p, ACTION_KEYS, "action");
    const anchor = oneOf(src, am.anchor, ANCHOR_NAMES, [...p, "anchor"], "anchor");
    const op = oneOf(src, am.op, ACTION_OPS, [...p, "op"], "op");
    const out: { -readonly [K in keyof DesignAction]: DesignAction[K] } = { anchor, op };
    if (am.xcr0 !== undefined) {
      if (op !== "xsetbv") src.fail(`xcr0 only applies to op xsetbv, not ${op}`, [...p, "xcr0"], true);
      out.xcr0 = oneOf(src, am.xcr0, XCR0_TARGETS, [...p, "xcr0"], "xcr0 target");
    } else if (op === "xsetbv") src.fail("op xsetbv needs xcr0: guest | host | early", p);
    if (am.via !== undefined) {
      if (op !== "load-egprs" && op !== "store-egprs") src.fail(`via only applies to load-egprs/store-egprs, not ${op}`, [...p, "via"], true);
      out.via = oneOf(src, am.via, MOVE_VIAS, [...p, "via"], "via");
    }
    if (am.when !== undefined) out.when = condition(src, am.when, [...p, "when"]);
    return out;
  });
  return {
    name, description, source, egprHome,
    ...(m.hardwareXcr0Switch === true ? { hardwareXcr0Switch: true } : {}),
    ...(protectedGuests ? { protectedGuests } : {}),
    actions,
  };
}

/** Parses and validates a design file (YAML or JSON text). */
export function parseDesignFile(text: string, file: string): Design {
  const src = new YamlSource(text, file);
  return designFromYaml(src, src.data);
}
