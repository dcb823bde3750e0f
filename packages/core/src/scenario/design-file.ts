/**
 * User-written designs (YAML or JSON): validated against the design schema (designs.ts) with
 * ScenarioError file:line:column for unknown anchors, ops, conditions, vias and targets. A valid
 * file yields a Design that runs exactly like a built-in. `base: <built-in>` starts from a built-in
 * design: the keys given replace its own (e.g. `{ name: c-xfeatures-no-fastpath, base: c-xfeatures,
 * fastpath: off }`).
 */
import {
  ACTION_OPS, ANCHOR_NAMES, BUILTIN_DESIGNS, CONDITIONS, FLAG_NAME, MOVE_VIAS, PROTECTED_GUESTS, XCR0_TARGETS, builtinDesign,
  type Condition, type Design, type DesignAction, type EgprHome,
} from "../kvm/designs.js";
import { YamlSource, expectMap, expectString, type YamlPath } from "./yaml-source.js";

const EGPR_HOMES: readonly EgprHome[] = ["regs", "fpstate", "hardware"];
const DESIGN_KEYS = ["name", "base", "description", "source", "egprHome", "hardwareXcr0Switch", "protectedGuests", "fastpath", "actions"] as const;
const ACTION_KEYS = ["anchor", "op", "xcr0", "via", "when", "flag"] as const;

function oneOf<T extends string>(src: YamlSource, v: unknown, allowed: readonly T[], path: YamlPath, what: string): T {
  if (typeof v !== "string" || !allowed.includes(v as T)) src.fail(`unknown ${what} ${JSON.stringify(v)} (known: ${allowed.join(", ")})`, path);
  return v as T;
}

function condition(src: YamlSource, v: unknown, path: YamlPath): Condition {
  const s = typeof v === "string" ? v.trim() : v;
  const base = typeof s === "string" && s.startsWith("!") ? s.slice(1) : s;
  if (typeof base === "string" && base.startsWith("flag:")) {
    if (!FLAG_NAME.test(base.slice(5))) src.fail(`flag name ${JSON.stringify(base.slice(5))} must be lower-case words joined by "-" (e.g. flag:egpr-switch)`, path);
    return s as Condition;
  }
  if (typeof base !== "string" || !(CONDITIONS as readonly string[]).includes(base) || s === "!always") {
    src.fail(`unknown condition ${JSON.stringify(v)} (known: ${CONDITIONS.join(", ")}, flag:<name>; each negatable with "!")`, path);
  }
  return s as Condition;
}

/** `when`: one condition, or a list that holds when every condition does. */
function when(src: YamlSource, v: unknown, path: YamlPath): Condition | Condition[] {
  if (!Array.isArray(v)) return condition(src, v, path);
  if (v.length === 0) src.fail("when: an empty list; leave `when` out for an unconditional action", path);
  return v.map((c, i) => condition(src, c, [...path, i]));
}

/** Validates a parsed design object found at `path` of `src`. */
export function designFromYaml(src: YamlSource, obj: unknown, path: YamlPath = []): Design {
  const m = expectMap(src, obj, path, DESIGN_KEYS, "design");
  const name = expectString(src, m.name, [...path, "name"], "design name");
  let base: Design | undefined;
  if (m.base !== undefined) {
    base = typeof m.base === "string" ? builtinDesign(m.base) : undefined;
    if (!base) src.fail(`base ${JSON.stringify(m.base)} is not a built-in design (known: ${BUILTIN_DESIGNS.map((d) => d.name).join(", ")})`, [...path, "base"]);
    if (name === base.name) src.fail(`a design based on ${base.name} needs a name of its own`, [...path, "name"]);
  }
  const description = m.description === undefined && base ? `${base.description} (changed: ${Object.keys(m).filter((k) => k !== "name" && k !== "base").join(", ") || "nothing"})` : expectString(src, m.description, [...path, "description"], "design description");
  const source = m.source === undefined && base ? base.source : expectString(src, m.source, [...path, "source"], "design source");
  const egprHome = m.egprHome === undefined && base ? base.egprHome : oneOf(src, m.egprHome, EGPR_HOMES, [...path, "egprHome"], "egprHome");
  if (m.hardwareXcr0Switch !== undefined && typeof m.hardwareXcr0Switch !== "boolean") src.fail("hardwareXcr0Switch must be true or false", [...path, "hardwareXcr0Switch"]);
  const hardwareXcr0Switch = m.hardwareXcr0Switch === undefined ? base?.hardwareXcr0Switch : (m.hardwareXcr0Switch as boolean);
  const protectedGuests = m.protectedGuests === undefined ? base?.protectedGuests : oneOf(src, m.protectedGuests, PROTECTED_GUESTS, [...path, "protectedGuests"], "protectedGuests");
  const fastpath = m.fastpath === undefined ? base?.fastpath : oneOf(src, m.fastpath, ["on", "off"] as const, [...path, "fastpath"], "fastpath setting");
  if (m.actions === undefined && base) {
    return {
      name, description, source, egprHome,
      ...(hardwareXcr0Switch === true ? { hardwareXcr0Switch: true } : {}),
      ...(protectedGuests ? { protectedGuests } : {}),
      ...(fastpath ? { fastpath } : {}),
      actions: base.actions,
    };
  }
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
    if (am.when !== undefined) out.when = when(src, am.when, [...p, "when"]);
    if (op === "latch") {
      if (typeof am.flag !== "string" || !FLAG_NAME.test(am.flag)) src.fail('op latch needs flag: <name> (lower-case words joined by "-")', am.flag === undefined ? p : [...p, "flag"]);
      out.flag = am.flag as string;
    } else if (am.flag !== undefined) src.fail(`flag only applies to op latch, not ${op}`, [...p, "flag"], true);
    return out;
  });
  // A flag an action tests must be latched by some action of the design (a typo would silently read false).
  const latched = new Set(actions.flatMap((a) => (a.op === "latch" && a.flag ? [a.flag] : [])));
  actions.forEach((a, i) => {
    for (const [k, c] of [a.when ?? []].flat().entries()) {
      const name = c.replace(/^!/, "");
      if (name.startsWith("flag:") && !latched.has(name.slice(5))) {
        src.fail(`flag ${name.slice(5)} is not latched by any action of this design (op: latch, flag: ${name.slice(5)})`, [...path, "actions", i, "when", ...(Array.isArray(a.when) ? [k] : [])]);
      }
    }
  });
  return {
    name, description, source, egprHome,
    ...(hardwareXcr0Switch === true ? { hardwareXcr0Switch: true } : {}),
    ...(protectedGuests ? { protectedGuests } : {}),
    ...(fastpath ? { fastpath } : {}),
    actions,
  };
}

/** Parses and validates a design file (YAML or JSON text). */
export function parseDesignFile(text: string, file: string): Design {
  const src = new YamlSource(text, file);
  return designFromYaml(src, src.data);
}
