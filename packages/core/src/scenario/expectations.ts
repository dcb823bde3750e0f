/**
 * What a scenario says it expects, and the judging of it against a run: for the whole scenario
 * (`expect:` at the top: violations, and the state after the last event) and per event (an event's
 * own `expect:`: what the guest read, ioctl results and errno, guest faults, the KVM_GET_XSAVE2
 * image, kvm_run->s.regs, KVM's XCR0 and CR4, the avail/dirty masks, the guest level, vendor state,
 * violations). Parsing keeps file:line:column for every key; judging reads only the run's
 * observations (explorable.ts Observation) and the state after the event — never the model's insides.
 */
import { formatLocation } from "../errors.js";
import { gprIndex } from "../cpu/gpr.js";
import { bytesToHex, hexToBytes } from "../cpu/hex-bytes.js";
import { XFEATURE } from "../cpu/xfeatures.js";
import { INVARIANTS, zeroCost, type CostCounters, type GuestLevel, type InvariantName, type IoctlName, type Observation, type Violation } from "../kvm/explorable.js";
import type { GuestExitKind } from "../kvm/guest-exit.js";
import type { MachineState } from "../kvm/machine-state.js";
import { maskNames, regLayout } from "../kvm/regs.js";
import { KVM_REGS_FIELDS, type Errno } from "../kvm/uapi-ops.js";
import { vendorFieldByName } from "../kvm/vendor-fields.js";
import type { VendorOps } from "../kvm/vendor-ops.js";
import { anyMap, expectMap, type YamlPath, type YamlSource } from "./yaml-source.js";

export type ViolationsExpect = { readonly exactly: readonly InvariantName[] } | { readonly contains: readonly InvariantName[] };
/** A register mask (regs_avail/regs_dirty) by short register names (RSP, R16, CR4…): exactly these, or some set and some clear. */
export type MaskExpect = { readonly exactly: readonly string[] } | { readonly has: readonly string[]; readonly lacks: readonly string[] };
/** A feature bitmap: exactly this value, or some bits set and some clear. */
export type BitsExpect = { readonly value: bigint } | { readonly has: readonly number[]; readonly lacks: readonly number[] };
export type FaultVectorName = "UD" | "GP" | "SS";
export interface FaultExpect {
  readonly vector: FaultVectorName;
  /** The error code it must carry (#GP(0)); absent: any. */
  readonly errorCode?: number;
  /** Raised by the CPU in the guest, or queued by KVM; absent: either. */
  readonly by?: "cpu" | "kvm";
}
export interface XsaveExpect {
  readonly xstateBv?: BitsExpect;
  /** Component 19 registers (r16…r31) with their values. */
  readonly apx?: readonly { readonly reg: string; readonly value: bigint }[];
  /** Image bytes at byte offsets, as hex. */
  readonly bytes?: readonly { readonly offset: number; readonly hex: string }[];
}
export interface ReadExpect {
  readonly reg: string;
  readonly value: bigint;
  readonly level?: GuestLevel;
}
export type IoctlResult = "ok" | Errno;

/** One `expect:` mapping, parsed. `at` says where each key was written (file:line:column). */
export interface Expectation {
  readonly violations?: ViolationsExpect;
  readonly read?: bigint;
  readonly reads?: readonly ReadExpect[];
  readonly result?: IoctlResult;
  readonly ioctls?: readonly { readonly ioctl: IoctlName; readonly result: IoctlResult }[];
  readonly exit?: GuestExitKind;
  readonly fault?: FaultExpect | "none";
  readonly xsave?: XsaveExpect;
  readonly syncRegs?: readonly { readonly field: string; readonly value: bigint }[];
  readonly xcr0?: bigint;
  readonly cr4?: bigint;
  readonly avail?: MaskExpect;
  readonly dirty?: MaskExpect;
  readonly level?: GuestLevel;
  readonly vendor?: readonly { readonly field: string; readonly value: bigint }[];
  /** The event's cost counters (explorable.ts CostCounters): host XSETBVs, EGPR moves, … */
  readonly cost?: Readonly<Partial<CostCounters>>;
  readonly at: Readonly<Record<string, string>>;
}

/** The outcome of one expectation key. */
export interface ExpectationResult {
  /** The event it belongs to; absent for the scenario's own `expect:`. */
  readonly event?: number;
  readonly key: string;
  readonly ok: boolean;
  /** What was expected and what happened, one line. */
  readonly message: string;
  /** Where the expectation is written. */
  readonly at: string;
}

const STATE_KEYS = ["xcr0", "cr4", "avail", "dirty", "level", "vendor"] as const;
const FILE_KEYS = ["ok", "violations", ...STATE_KEYS] as const;
const EVENT_KEYS = [...FILE_KEYS, "read", "reads", "result", "ioctls", "exit", "fault", "xsave", "syncRegs", "cost"] as const;
const COST_KEYS = Object.keys(zeroCost()) as (keyof CostCounters)[];

export const ERRNOS: readonly Errno[] = ["EINVAL", "EFAULT", "E2BIG", "ENXIO"];
export const IOCTL_NAMES: readonly IoctlName[] = ["KVM_RUN", "KVM_GET_XSAVE2", "KVM_SET_XSAVE", "KVM_GET_REGS", "KVM_SET_REGS", "KVM_GET_XCRS", "KVM_SET_XCRS"];
/** Every guest-exit.ts kind (the record makes the compiler check the list is complete). */
const EXIT_KINDS_RECORD: Record<GuestExitKind, true> = {
  xsetbv: true, cpuid: true, hlt: true, io: true, "rdmsr-imm": true, "wrmsrns-imm": true, wrmsr: true, nmi: true, "preemption-timer": true, "vm-fail": true,
  "dr-access": true, mce: true,
};
export const GUEST_EXIT_KINDS = Object.keys(EXIT_KINDS_RECORD) as GuestExitKind[];

/** Short register names of every layout (RAX…R31, RIP, PDPTR, CR0…): what avail/dirty expectations use. */
const shortName = (n: string): string => n.replace(/^VCPU_(REGS?|EXREG)_/, "");
const REG_NAMES: ReadonlySet<string> = new Set(
  [false, true].flatMap((pre) => [false, true].flatMap((egprsInRegs) => {
    const l = regLayout({ pre, egprsInRegs });
    return Array.from({ length: l.nrTotal }, (_, i) => shortName(l.name(i)));
  })),
);

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** What the parser needs to know about the scenario around an expectation. */
export interface ExpectContext {
  readonly backend: VendorOps;
  /** The event's kind for an event's `expect:`; undefined for the scenario's. */
  readonly eventKind?: string;
}

function stringList(src: YamlSource, raw: unknown, path: YamlPath, what: string, check: (s: string, p: YamlPath) => string): string[] {
  if (!Array.isArray(raw)) return src.fail(`${what} must be a list`, path);
  return raw.map((x, i) => {
    if (typeof x !== "string") src.fail(`${what}: expected a name, got ${JSON.stringify(x)}`, [...path, i]);
    return check(x, [...path, i]);
  });
}

function invariantNames(src: YamlSource, raw: unknown, path: YamlPath): InvariantName[] {
  const names = Object.keys(INVARIANTS);
  return stringList(src, raw, path, "violations", (s, p) => {
    if (!names.includes(s)) src.fail(`unknown invariant ${JSON.stringify(s)} (known: ${names.join(", ")})`, p);
    return s;
  }) as InvariantName[];
}

function violationsExpect(src: YamlSource, raw: unknown, path: YamlPath): ViolationsExpect {
  if (Array.isArray(raw)) return { exactly: invariantNames(src, raw, path) };
  const m = expectMap(src, raw, path, ["exactly", "contains"], "violations");
  if ((m.exactly === undefined) === (m.contains === undefined)) src.fail("violations: a list (exactly these), or { exactly: [...] } or { contains: [...] }", path);
  return m.exactly !== undefined ? { exactly: invariantNames(src, m.exactly, [...path, "exactly"]) } : { contains: invariantNames(src, m.contains, [...path, "contains"]) };
}

function regName(src: YamlSource, s: string, p: YamlPath): string {
  const n = shortName(s.toUpperCase());
  if (!REG_NAMES.has(n)) src.fail(`"${s}" is not a register of KVM's enum kvm_reg (VCPU_REG_RSP or RSP, R16, RIP, CR4, …)`, p);
  return n;
}

function maskExpect(src: YamlSource, raw: unknown, path: YamlPath, what: string): MaskExpect {
  const check = (s: string, p: YamlPath) => regName(src, s, p);
  if (Array.isArray(raw)) return { exactly: stringList(src, raw, path, what, check) };
  const m = expectMap(src, raw, path, ["has", "lacks"], what);
  return {
    has: m.has === undefined ? [] : stringList(src, m.has, [...path, "has"], what, check),
    lacks: m.lacks === undefined ? [] : stringList(src, m.lacks, [...path, "lacks"], what, check),
  };
}

function xfeatureNumber(src: YamlSource, raw: unknown, p: YamlPath): number {
  if (typeof raw === "string" && raw in XFEATURE) return XFEATURE[raw as keyof typeof XFEATURE];
  if (typeof raw === "number" && Number.isInteger(raw) && raw >= 0 && raw < 64) return raw;
  return src.fail(`${JSON.stringify(raw)} is not an XSAVE feature (a number 0–63 or ${Object.keys(XFEATURE).join(", ")})`, p);
}

function bitsExpect(src: YamlSource, raw: unknown, path: YamlPath, what: string): BitsExpect {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return { value: src.u64(raw, path, what) };
  const m = expectMap(src, raw, path, ["has", "lacks"], what);
  const list = (k: "has" | "lacks"): number[] => {
    if (m[k] === undefined) return [];
    if (!Array.isArray(m[k])) return src.fail(`${what} ${k} must be a list`, [...path, k]);
    return (m[k] as unknown[]).map((x, i) => xfeatureNumber(src, x, [...path, k, i]));
  };
  return { has: list("has"), lacks: list("lacks") };
}

/** "#UD", "#GP(0)", "#GP", "#SS(0)", or { vector, errorCode?, by? }. */
function faultExpect(src: YamlSource, raw: unknown, path: YamlPath): FaultExpect | "none" {
  if (raw === "none") return "none";
  if (typeof raw === "string") {
    const m = /^#?(UD|GP|SS)(?:\((\d+|0x[0-9a-fA-F]+)\))?$/.exec(raw.trim());
    if (!m) return src.fail(`fault: "${raw}" is not none, #UD, #GP(0), #GP, #SS(0) or { vector, errorCode, by }`, path);
    if (m[1] === "UD" && m[2] !== undefined) src.fail("fault: #UD has no error code", path);
    return { vector: m[1] as FaultVectorName, ...(m[2] !== undefined ? { errorCode: Number(m[2]) } : {}) };
  }
  const m = expectMap(src, raw, path, ["vector", "errorCode", "by"], "fault");
  const vector = typeof m.vector === "string" ? m.vector.replace(/^#/, "") : m.vector;
  if (vector !== "UD" && vector !== "GP" && vector !== "SS") src.fail(`fault vector ${JSON.stringify(m.vector)} is not UD, GP or SS`, [...path, "vector"]);
  if (m.by !== undefined && m.by !== "cpu" && m.by !== "kvm") src.fail('fault `by` is "cpu" (raised in the guest) or "kvm" (queued by KVM)', [...path, "by"]);
  if (vector === "UD" && m.errorCode !== undefined) src.fail("fault: #UD has no error code", [...path, "errorCode"]);
  return {
    vector: vector as FaultVectorName,
    ...(m.errorCode !== undefined ? { errorCode: src.u32(m.errorCode, [...path, "errorCode"], "errorCode") } : {}),
    ...(m.by !== undefined ? { by: m.by as "cpu" | "kvm" } : {}),
  };
}

function ioctlResult(src: YamlSource, raw: unknown, path: YamlPath): IoctlResult {
  if (raw === "ok" || (typeof raw === "string" && (ERRNOS as readonly string[]).includes(raw))) return raw as IoctlResult;
  return src.fail(`${JSON.stringify(raw)} is not an ioctl result (ok, ${ERRNOS.join(", ")})`, path);
}

const APX_REGS = Array.from({ length: 16 }, (_, k) => `r${16 + k}`);

function xsaveExpect(src: YamlSource, raw: unknown, path: YamlPath): XsaveExpect {
  const m = expectMap(src, raw, path, ["xstateBv", "apx", "bytes"], "xsave");
  let apx: { reg: string; value: bigint }[] | undefined;
  if (Array.isArray(m.apx)) {
    if (m.apx.length > 16) src.fail("xsave apx: at most 16 values (r16…r31)", [...path, "apx"]);
    apx = m.apx.map((v, k) => ({ reg: APX_REGS[k]!, value: src.u64(v, [...path, "apx", k], `apx[${k}]`) }));
  } else if (m.apx !== undefined) {
    const r = expectMap(src, m.apx, [...path, "apx"], APX_REGS, "xsave apx");
    apx = Object.entries(r).map(([reg, v]) => ({ reg, value: src.u64(v, [...path, "apx", reg], reg) }));
  }
  let bytes: { offset: number; hex: string }[] | undefined;
  if (m.bytes !== undefined) {
    const b = anyMap(src, m.bytes, [...path, "bytes"], "xsave bytes");
    bytes = Object.entries(b).map(([k, v]) => {
      const p = [...path, "bytes", k];
      const offset = /^(0x[0-9a-fA-F]+|\d+)$/.test(k) ? Number(k) : NaN;
      if (!Number.isSafeInteger(offset)) src.fail(`xsave bytes: "${k}" is not a byte offset`, p, true);
      if (typeof v !== "string") src.fail('xsave bytes: the bytes are a hex string, e.g. "11 11 00 00"', p);
      try {
        return { offset, hex: bytesToHex(hexToBytes(v as string, "xsave bytes")) };
      } catch (e) {
        return src.fail((e as Error).message, p);
      }
    });
  }
  return {
    ...(m.xstateBv !== undefined ? { xstateBv: bitsExpect(src, m.xstateBv, [...path, "xstateBv"], "xstateBv") } : {}),
    ...(apx ? { apx } : {}),
    ...(bytes ? { bytes } : {}),
  };
}

function level(src: YamlSource, raw: unknown, path: YamlPath, backend: VendorOps): GuestLevel {
  if (!backend.nested?.isGuestMode) src.fail(`backend ${backend.name} has no nested guest: there is no L1/L2 to tell apart`, path);
  if (raw !== "L1" && raw !== "L2") src.fail(`level ${JSON.stringify(raw)} is L1 or L2`, path);
  return raw as GuestLevel;
}

/** Parses an `expect:` mapping at `path` (the scenario's when ctx.eventKind is undefined, else an event's). */
export function parseExpectation(src: YamlSource, raw: unknown, path: YamlPath, ctx: ExpectContext): Expectation {
  const keys = ctx.eventKind === undefined ? FILE_KEYS : EVENT_KEYS;
  const what = ctx.eventKind === undefined ? "expect (per-event keys such as read, result, fault, xsave go in an event's own expect)" : "expect";
  const m = expectMap(src, raw, path, keys, what);
  const at: Record<string, string> = {};
  for (const k of Object.keys(m)) at[k] = formatLocation(src.where([...path, k], true));
  const p = (k: string): YamlPath => [...path, k];
  const out: { -readonly [K in keyof Expectation]: Expectation[K] } = { at };
  if (m.ok !== undefined) {
    if (m.ok !== true) src.fail("ok: true is the only form (no violation); list the violations you expect instead", p("ok"));
    if (m.violations !== undefined) src.fail("ok: true means no violation; drop it or drop violations", p("ok"), true);
    out.violations = { exactly: [] };
    at.violations = at.ok!;
  }
  if (m.violations !== undefined) out.violations = violationsExpect(src, m.violations, p("violations"));
  if (m.read !== undefined) {
    if (ctx.eventKind !== "guest-read") src.fail(`read is the value a guest-read event's register held; this is a ${ctx.eventKind} event (use reads: { reg: value })`, p("read"), true);
    out.read = src.u64(m.read, p("read"), "read");
  }
  if (m.reads !== undefined) {
    const r = anyMap(src, m.reads, p("reads"), "reads");
    out.reads = Object.entries(r).map(([reg, v]) => {
      const rp = [...p("reads"), reg];
      if (gprIndex(reg) === undefined) src.fail(`"${reg}" is not a GPR name (rax … r31)`, rp, true);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        const e = expectMap(src, v, rp, ["value", "level"], `reads ${reg}`);
        return { reg, value: src.u64(e.value, [...rp, "value"], `reads ${reg}`), ...(e.level !== undefined ? { level: level(src, e.level, [...rp, "level"], ctx.backend) } : {}) };
      }
      return { reg, value: src.u64(v, rp, `reads ${reg}`) };
    });
  }
  if (m.result !== undefined) out.result = ioctlResult(src, m.result, p("result"));
  if (m.ioctls !== undefined) {
    const r = expectMap(src, m.ioctls, p("ioctls"), IOCTL_NAMES, "ioctls");
    out.ioctls = Object.entries(r).map(([ioctl, v]) => ({ ioctl: ioctl as IoctlName, result: ioctlResult(src, v, [...p("ioctls"), ioctl]) }));
  }
  if (m.exit !== undefined) {
    if (typeof m.exit !== "string" || !(GUEST_EXIT_KINDS as readonly string[]).includes(m.exit)) src.fail(`exit ${JSON.stringify(m.exit)} is not a guest exit (${GUEST_EXIT_KINDS.join(", ")})`, p("exit"));
    out.exit = m.exit as GuestExitKind;
  }
  if (m.fault !== undefined) out.fault = faultExpect(src, m.fault, p("fault"));
  if (m.xsave !== undefined) out.xsave = xsaveExpect(src, m.xsave, p("xsave"));
  if (m.syncRegs !== undefined) {
    const r = expectMap(src, m.syncRegs, p("syncRegs"), KVM_REGS_FIELDS, "syncRegs (struct kvm_regs fields)");
    out.syncRegs = Object.entries(r).map(([field, v]) => ({ field, value: src.u64(v, [...p("syncRegs"), field], field) }));
  }
  if (m.xcr0 !== undefined) out.xcr0 = src.u64(m.xcr0, p("xcr0"), "xcr0");
  if (m.cr4 !== undefined) out.cr4 = src.u64(m.cr4, p("cr4"), "cr4");
  if (m.avail !== undefined) out.avail = maskExpect(src, m.avail, p("avail"), "avail");
  if (m.dirty !== undefined) out.dirty = maskExpect(src, m.dirty, p("dirty"), "dirty");
  if (m.level !== undefined) out.level = level(src, m.level, p("level"), ctx.backend);
  if (m.cost !== undefined) {
    const r = expectMap(src, m.cost, p("cost"), COST_KEYS, "cost");
    out.cost = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, src.u32(v, [...p("cost"), k], `cost ${k}`)]));
  }
  if (m.vendor !== undefined) {
    const r = anyMap(src, m.vendor, p("vendor"), "vendor");
    const declared = new Set(ctx.backend.vendorFields ?? []);
    out.vendor = Object.entries(r).map(([field, v]) => {
      const spec = vendorFieldByName(field);
      if (!spec || !declared.has(spec.id)) src.fail(`"${field}" is not a vendor field of backend ${ctx.backend.name}`, [...p("vendor"), field], true);
      return { field, value: src.u64(v, [...p("vendor"), field], field) };
    });
  }
  return out;
}

// ---- judging ------------------------------------------------------------------------------------

/** What one event of a run left to judge. */
export interface EventOutcome {
  readonly index: number;
  readonly kind: string;
  /** The register a guest-read event read. */
  readonly reg?: string;
  readonly observations: readonly Observation[];
  readonly violations: readonly Violation[];
  readonly cost: CostCounters;
  /** The state after the event. */
  readonly state: MachineState;
}

const last = <T>(xs: readonly T[], pred: (x: T) => boolean): T | undefined => {
  for (let i = xs.length - 1; i >= 0; i--) if (pred(xs[i]!)) return xs[i];
  return undefined;
};
type Obs<K extends Observation["kind"]> = Extract<Observation, { kind: K }>;
const ofKind = <K extends Observation["kind"]>(xs: readonly Observation[], kind: K): Obs<K>[] => xs.filter((o): o is Obs<K> => o.kind === kind);

const faultText = (f: { vector: string; errorCode?: number; by?: string }): string =>
  `#${f.vector}${f.errorCode !== undefined ? `(${f.errorCode})` : ""}${f.by ? ` (${f.by === "kvm" ? "queued by KVM" : "raised by the CPU"})` : ""}`;
const resultText = (o: Obs<"ioctl">): IoctlResult => (o.ok ? "ok" : (o.errno as Errno));

function maskCheck(x: MaskExpect, names: string[]): string | undefined {
  const have = new Set(names);
  if ("exactly" in x) {
    const want = new Set(x.exactly);
    const missing = x.exactly.filter((n) => !have.has(n));
    const extra = names.filter((n) => !want.has(n));
    return missing.length || extra.length ? `${missing.length ? `missing ${missing.join(",")}` : ""}${missing.length && extra.length ? "; " : ""}${extra.length ? `also ${extra.join(",")}` : ""}` : undefined;
  }
  const missing = x.has.filter((n) => !have.has(n));
  const set = x.lacks.filter((n) => have.has(n));
  return missing.length || set.length ? `${missing.length ? `${missing.join(",")} not set` : ""}${missing.length && set.length ? "; " : ""}${set.length ? `${set.join(",")} set` : ""}` : undefined;
}
const maskText = (x: MaskExpect): string =>
  "exactly" in x ? `exactly [${x.exactly.join(",")}]` : [x.has.length ? `has ${x.has.join(",")}` : "", x.lacks.length ? `lacks ${x.lacks.join(",")}` : ""].filter(Boolean).join(", ");

function bitsCheck(x: BitsExpect, got: bigint): string | undefined {
  if ("value" in x) return got === x.value ? undefined : `expected ${hex(x.value)}`;
  const missing = x.has.filter((b) => ((got >> BigInt(b)) & 1n) === 0n);
  const set = x.lacks.filter((b) => ((got >> BigInt(b)) & 1n) === 1n);
  return missing.length || set.length ? [missing.length ? `bit ${missing.join(",")} clear` : "", set.length ? `bit ${set.join(",")} set` : ""].filter(Boolean).join(", ") : undefined;
}

/**
 * Judges the state keys (xcr0, cr4, avail, dirty, level, vendor) of `x` against `st`, the state
 * after an event (or after the last one for the scenario's own expectation).
 */
function judgeState(x: Expectation, st: MachineState, backend: VendorOps, push: (key: string, ok: boolean, message: string) => void): void {
  const v = st.vcpu;
  if (x.xcr0 !== undefined) push("xcr0", v.xcr0 === x.xcr0, `KVM's XCR0 ${hex(v.xcr0)}${v.xcr0 === x.xcr0 ? "" : `, expected ${hex(x.xcr0)}`}`);
  if (x.cr4 !== undefined) push("cr4", v.cr4 === x.cr4, `guest CR4 ${hex(v.cr4)}${v.cr4 === x.cr4 ? "" : `, expected ${hex(x.cr4)}`}`);
  for (const k of ["avail", "dirty"] as const) {
    const want = x[k];
    if (!want) continue;
    const names = maskNames(v.layout, k === "avail" ? v.regsAvail : v.regsDirty).map(shortName);
    const bad = maskCheck(want, names);
    push(k, bad === undefined, `regs_${k} [${names.join(",")}]${bad ? `: ${bad} (expected ${maskText(want)})` : ` (${maskText(want)})`}`);
  }
  if (x.level !== undefined) {
    const got: GuestLevel = backend.nested?.isGuestMode?.(v) ? "L2" : "L1";
    push("level", got === x.level, `the vCPU runs ${got}${got === x.level ? "" : `, expected ${x.level}`}`);
  }
  for (const f of x.vendor ?? []) {
    const got = v.vendorByName(f.field) ?? 0n;
    push("vendor", got === f.value, `${f.field} = ${hex(got)}${got === f.value ? "" : `, expected ${hex(f.value)}`}`);
  }
}

/** Judges an event's `expect:` against what the event showed and the state it left. */
export function judgeEvent(x: Expectation, e: EventOutcome, backend: VendorOps): ExpectationResult[] {
  const out: ExpectationResult[] = [];
  const push = (key: string, ok: boolean, message: string) => out.push({ event: e.index, key, ok, message, at: x.at[key] ?? "" });
  const obs = e.observations;
  if (x.violations) {
    const seen = [...new Set(e.violations.map((v) => v.invariant))];
    push("violations", ...violationsCheck(x.violations, seen));
  }
  const reads = ofKind(obs, "guest-read");
  if (x.read !== undefined) {
    const r = last(reads, (o) => o.reg === e.reg);
    push("read", r?.value === x.read, r ? `guest read ${r.reg} = ${hex(r.value)}${r.value === x.read ? "" : `, expected ${hex(x.read)}`}` : `the guest never read ${e.reg} (the read did not run), expected ${hex(x.read)}`);
  }
  for (const want of x.reads ?? []) {
    const r = last(reads, (o) => o.reg === want.reg);
    const ok = r !== undefined && r.value === want.value && (want.level === undefined || r.level === want.level);
    const where = r?.level ? ` in ${r.level}` : "";
    push("reads", ok, r ? `guest read ${r.reg} = ${hex(r.value)}${where}${ok ? "" : `, expected ${hex(want.value)}${want.level ? ` in ${want.level}` : ""}`}` : `the guest never read ${want.reg}, expected ${hex(want.value)}`);
  }
  const ioctls = ofKind(obs, "ioctl");
  if (x.result !== undefined) {
    const failed = ioctls.find((o) => !o.ok);
    const got: IoctlResult | undefined = ioctls.length === 0 ? undefined : failed ? resultText(failed) : "ok";
    push("result", got === x.result, got === undefined ? `the event issued no ioctl, expected ${x.result}` : `${failed ? `${failed.ioctl} failed: ${failed.errno} (${failed.reason})` : `${ioctls.map((o) => o.ioctl).join(", ")} ok`}${got === x.result ? "" : `, expected ${x.result}`}`);
  }
  for (const want of x.ioctls ?? []) {
    const o = last(ioctls, (i) => i.ioctl === want.ioctl);
    const got = o && resultText(o);
    push("ioctls", got === want.result, o ? `${want.ioctl} → ${got}${o.reason && !o.ok ? ` (${o.reason})` : ""}${got === want.result ? "" : `, expected ${want.result}`}` : `no ${want.ioctl} in this event, expected ${want.result}`);
  }
  if (x.exit !== undefined) {
    const run = last(ioctls, (o) => o.ioctl === "KVM_RUN" && o.ok);
    push("exit", run?.exit === x.exit, run ? `KVM_RUN: the guest stopped on ${run.exit ?? "nothing"}${run.toUserspace ? " (exit to userspace)" : ""}${run.exit === x.exit ? "" : `, expected ${x.exit}`}` : `no KVM_RUN ran in this event, expected exit ${x.exit}`);
  }
  if (x.fault !== undefined) {
    const faults = ofKind(obs, "guest-fault");
    const got = faults.map(faultText).join(", ") || "none";
    if (x.fault === "none") push("fault", faults.length === 0, `guest faults: ${got}${faults.length ? ", expected none" : ""}`);
    else {
      const f = x.fault;
      const ok = faults.some((o) => o.vector === f.vector && (f.errorCode === undefined || o.errorCode === f.errorCode) && (f.by === undefined || o.by === f.by));
      push("fault", ok, `guest faults: ${got}${ok ? "" : `, expected ${faultText(f)}`}`);
    }
  }
  if (x.xsave) judgeXsave(x.xsave, last(ofKind(obs, "xsave"), () => true), push);
  if (x.syncRegs) {
    const s = last(ofKind(obs, "sync-regs"), () => true);
    for (const f of x.syncRegs) {
      const got = s?.regs[f.field];
      push("syncRegs", got === f.value, s ? `kvm_run->s.regs.${f.field} = ${hex(got ?? 0n)}${got === f.value ? "" : `, expected ${hex(f.value)}`}` : "store_regs did not run (KVM_SYNC_X86_REGS not in kvm_valid_regs, or a protected vCPU)");
    }
  }
  for (const [k, want] of Object.entries(x.cost ?? {}) as [keyof CostCounters, number][]) {
    const got = e.cost[k];
    push("cost", got === want, `${k} ${got}${got === want ? "" : `, expected ${want}`}`);
  }
  judgeState(x, e.state, backend, push);
  return inWrittenOrder(out);
}

/** Results in the order their keys are written (judging goes by kind). */
function inWrittenOrder(xs: ExpectationResult[]): ExpectationResult[] {
  const pos = (x: ExpectationResult): number => {
    const m = /:(\d+):(\d+)$/.exec(x.at);
    return m ? Number(m[1]) * 100_000 + Number(m[2]) : 0;
  };
  return xs.map((x, i) => [x, i] as const).sort((a, b) => pos(a[0]) - pos(b[0]) || a[1] - b[1]).map(([x]) => x);
}

function judgeXsave(x: XsaveExpect, o: Obs<"xsave"> | undefined, push: (key: string, ok: boolean, message: string) => void): void {
  if (!o) return push("xsave", false, "no KVM_GET_XSAVE2 returned an image in this event");
  if (x.xstateBv) {
    const bad = bitsCheck(x.xstateBv, o.xstateBv);
    push("xsave", bad === undefined, `XSTATE_BV ${hex(o.xstateBv)}${bad ? `: ${bad}` : ""}`);
  }
  for (const r of x.apx ?? []) {
    const got = o.apx?.[Number(r.reg.slice(1)) - 16];
    push("xsave", got === r.value, o.apx ? `component 19 ${r.reg} = ${hex(got ?? 0n)}${got === r.value ? "" : `, expected ${hex(r.value)}`}` : `XSTATE_BV[19] is clear: the image has no component 19 (expected ${r.reg} = ${hex(r.value)})`);
  }
  for (const b of x.bytes ?? []) {
    const n = b.hex.length / 2;
    const got = bytesToHex(o.bytes.subarray(b.offset, b.offset + n));
    push("xsave", got === b.hex, `bytes at ${b.offset}: ${got || "(past the end of the image)"}${got === b.hex ? "" : `, expected ${b.hex}`}`);
  }
}

function violationsCheck(x: ViolationsExpect, seen: readonly InvariantName[]): [boolean, string] {
  const got = seen.length ? seen.join(", ") : "none";
  if ("contains" in x) {
    const missing = x.contains.filter((n) => !seen.includes(n));
    return [missing.length === 0, missing.length ? missing.map((n) => `expected a ${n} violation, none happened`).join("; ") : `violations: ${got} (${x.contains.join(", ")} among them)`];
  }
  if (x.exactly.length === 0) return [seen.length === 0, seen.length ? `expected no violation, got ${got}` : "no violation"];
  const missing = x.exactly.filter((n) => !seen.includes(n));
  const extra = seen.filter((n) => !x.exactly.includes(n));
  const problems = [...missing.map((n) => `expected a ${n} violation, none happened`), ...extra.map((n) => `unexpected ${n} violation`)];
  return [problems.length === 0, problems.length ? problems.join("; ") : `violations: exactly ${got}`];
}

/** Judges the scenario's own `expect:`: violations over the whole run, the state keys after the last event. */
export function judgeScenario(x: Expectation, seen: readonly InvariantName[], st: MachineState, backend: VendorOps): ExpectationResult[] {
  const out: ExpectationResult[] = [];
  const push = (key: string, ok: boolean, message: string) => out.push({ key, ok, message, at: x.at[key] ?? "" });
  if (x.violations) push("violations", ...violationsCheck(x.violations, seen));
  judgeState(x, st, backend, push);
  return inWrittenOrder(out);
}
