import {
  ASSUMPTIONS,
  expectMap,
  KVM_REGS_FIELDS,
  YamlSource,
  type AssumptionName,
  type ModelOptions,
  type SourceLocation,
  type YamlPath,
} from "@kvmx/core";
import type { CpuidKind, VcpuGetIoctl } from "../api.js";
import { KVM_CAP, type KvmCapName } from "../caps.js";
import type { StructName } from "../structs/layout.js";
import { fieldKind, fieldPaths } from "./struct-fields.js";

/**
 * The differential scenario format (scenarios/real/README.md): the events real hardware can execute,
 * as a list of steps run in order on ONE vCPU of ONE VM (2 MiB of guest memory at 0), on the model and
 * on the real kernel. Each step is `kind` or `{ kind: argument }`. Core's scenario format carries the
 * checker's events (NMIs at sites, designs, preemption), which a real kernel cannot be told to do, so
 * these files have their own small schema; YAML errors and schema errors carry file:line:column.
 */
export type ProgramSpec =
  | { readonly program: "xsetbv"; readonly xcr0: bigint }
  | { readonly program: "xgetbv"; readonly cpl: 0 | 3 }
  | { readonly program: "mov"; readonly regs: Readonly<Record<string, bigint>>; readonly cpl: 0 | 3 }
  | { readonly program: "fault"; readonly fault: "ud2" | "egpr-mov"; readonly cpl: 0 | 3 }
  | { readonly program: "cpuid-loop"; readonly iterations: bigint }
  | { readonly program: "cpuid"; readonly leaf: number; readonly subleaf: number }
  | {
      readonly program: "real-mode";
      /** Bytes run in real mode from 0000:1000 (SS:SP 0000:7000). */
      readonly code: Uint8Array;
      /** More bytes at guest-physical addresses (handlers, data). */
      readonly at: readonly { readonly gpa: number; readonly bytes: Uint8Array }[];
      /** IVT entries: vector → handler offset in segment 0. */
      readonly ivt: readonly { readonly vector: number; readonly offset: number }[];
    };

export type RealStep = { readonly at: SourceLocation } & (
  | { readonly kind: "set-cpuid"; readonly xcr0Mask?: bigint }
  | { readonly kind: "set-xcrs"; readonly xcr0: bigint; readonly flags: number }
  | { readonly kind: "get-xcrs" }
  | { readonly kind: "set-regs"; readonly regs: Readonly<Record<string, bigint>> }
  | { readonly kind: "get-regs" }
  | { readonly kind: "get-sregs" }
  | { readonly kind: "get-fpu" }
  | { readonly kind: "set-xsave"; readonly image: XsaveSpec }
  | { readonly kind: "get-xsave" }
  | { readonly kind: "get-xsave2" }
  | { readonly kind: "run"; readonly spec: ProgramSpec; readonly maxExits: number }
  | { readonly kind: "sync-regs"; readonly valid: bigint; readonly dirty: bigint; readonly regs: Readonly<Record<string, bigint>> }
  | { readonly kind: "check-extension"; readonly cap: KvmCapName }
  | { readonly kind: "supported-cpuid"; readonly leaf: number; readonly subleaf: number; readonly regs: readonly CpuidReg[] }
  | { readonly kind: "set-sregs" | "set-fpu" | "set-vcpu-events" | "set-debugregs"; readonly fields: FieldSets }
  | { readonly kind: "get-vcpu-events" | "get-debugregs" | "emulated-cpuid" }
  | { readonly kind: "get-cpuid2"; readonly nent?: number; readonly prefill: number }
  | { readonly kind: "cpuid-into"; readonly cpuid: CpuidKind; readonly nent: number; readonly prefill: number }
  | { readonly kind: "device-attr"; readonly group: number; readonly attr: bigint }
  | { readonly kind: "get-into"; readonly ioctl: VcpuGetIoctl; readonly size: number; readonly prefill: number }
);

/** Fields a set-* step changes on top of what the matching get returns (struct-fields.ts paths). */
export type FieldSets = readonly { readonly path: string; readonly value: bigint | Uint8Array }[];

/** The struct each set-* step writes. */
export const SET_STRUCT = {
  "set-sregs": "kvm_sregs",
  "set-fpu": "kvm_fpu",
  "set-vcpu-events": "kvm_vcpu_events",
  "set-debugregs": "kvm_debugregs",
} as const satisfies Record<string, StructName>;

export const GET_INTO_IOCTLS = [
  "KVM_GET_REGS", "KVM_GET_SREGS", "KVM_GET_FPU", "KVM_GET_XSAVE", "KVM_GET_XSAVE2", "KVM_GET_XCRS", "KVM_GET_VCPU_EVENTS", "KVM_GET_DEBUGREGS",
] as const satisfies readonly VcpuGetIoctl[];
export type RealStepKind = RealStep["kind"];
export const CPUID_REGS = ["eax", "ebx", "ecx", "edx"] as const;
export type CpuidReg = (typeof CPUID_REGS)[number];

/** A KVM_SET_XSAVE image: a zeroed 4096-byte standard image with these fields set. */
export interface XsaveSpec {
  readonly xstateBv: bigint;
  readonly xcompBv: bigint;
  readonly mxcsr: number;
  /** Value of header byte 528 (the first reserved byte): non-zero must be rejected. */
  readonly reservedByte: number;
  /** R16..R31 for component 19 at its standard offset (missing entries 0). */
  readonly apx?: readonly bigint[];
  /** Raw bytes written at byte offsets of the image (e.g. YMM_Hi128 at 576), applied last. */
  readonly patch?: readonly { readonly offset: number; readonly bytes: Uint8Array }[];
}

export interface RealScenario {
  readonly name: string;
  readonly description: string;
  readonly file: string;
  /** How the simulated side is built (the backend is the caller's: the CLI wires VMX). */
  readonly model: { readonly cpu: string; readonly design: string; readonly options: Partial<ModelOptions> };
  readonly steps: readonly RealStep[];
}

export const REAL_STEP_KINDS = [
  "set-cpuid", "set-xcrs", "get-xcrs", "set-regs", "get-regs", "get-sregs", "get-fpu", "set-xsave", "get-xsave",
  "get-xsave2", "run", "sync-regs", "check-extension", "supported-cpuid", "set-sregs", "set-fpu", "get-vcpu-events",
  "set-vcpu-events", "get-debugregs", "set-debugregs", "get-cpuid2", "cpuid-into", "emulated-cpuid", "device-attr", "get-into",
] as const satisfies readonly RealStepKind[];

const TOP_KEYS = ["name", "description", "model", "steps"] as const;
const REG_NAMES: readonly string[] = KVM_REGS_FIELDS;

/** The source text of the scalar at `path` (YAML reads 0xffffffffffffffff as a lossy float; the text is exact). */
function scalarText(src: YamlSource, path: YamlPath): string | undefined {
  const node = src.doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
  return node?.range ? src.text.slice(node.range[0], node.range[1]) : undefined;
}

function u64(src: YamlSource, v: unknown, path: YamlPath, what: string): bigint {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === "number") v = scalarText(src, path) ?? v;
  if (typeof v === "string" && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v.trim())) {
    const x = BigInt(v.trim());
    if (x >> 64n === 0n) return x;
  }
  return src.fail(`${what} must be a u64 ("0x…" or a non-negative integer), got ${JSON.stringify(v)}`, path);
}

function small(src: YamlSource, v: unknown, path: YamlPath, what: string, max: number): number {
  const x = u64(src, v, path, what);
  if (x > BigInt(max)) src.fail(`${what} must be at most ${max}`, path);
  return Number(x);
}

function cplOf(src: YamlSource, v: unknown, path: YamlPath): 0 | 3 {
  if (v === undefined) return 0;
  if (v === 0 || v === 3) return v;
  return src.fail(`cpl must be 0 or 3, got ${JSON.stringify(v)}`, path);
}

function regsOf(src: YamlSource, v: unknown, path: YamlPath, allowed: readonly string[]): Record<string, bigint> {
  const m = expectMap(src, v, path, allowed, "regs");
  const out: Record<string, bigint> = {};
  for (const [k, x] of Object.entries(m)) out[k] = u64(src, x, [...path, k], k);
  return out;
}

const GPR_PROGRAM_REGS = [
  "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
  "r16", "r17", "r18", "r19", "r20", "r21", "r22", "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30", "r31",
];

function programOf(src: YamlSource, v: unknown, path: YamlPath): { spec: ProgramSpec; maxExits: number } {
  const m = expectMap(src, v, path, ["program", "xcr0", "cpl", "regs", "fault", "iterations", "leaf", "subleaf", "maxExits", "code", "at", "ivt"], "run");
  const maxExits = m.maxExits === undefined ? 4 : small(src, m.maxExits, [...path, "maxExits"], "maxExits", 64);
  if (maxExits < 1) src.fail("maxExits must be at least 1", [...path, "maxExits"]);
  const only = (keys: readonly string[]) => {
    for (const k of Object.keys(m)) if (!["program", "maxExits", ...keys].includes(k)) src.fail(`"${k}" does not apply to program ${String(m.program)}`, [...path, k], true);
  };
  switch (m.program) {
    case "xsetbv":
      only(["xcr0"]);
      return { spec: { program: "xsetbv", xcr0: u64(src, m.xcr0, [...path, "xcr0"], "xcr0") }, maxExits };
    case "xgetbv":
      only(["cpl"]);
      return { spec: { program: "xgetbv", cpl: cplOf(src, m.cpl, [...path, "cpl"]) }, maxExits };
    case "mov":
      only(["regs", "cpl"]);
      return { spec: { program: "mov", regs: regsOf(src, m.regs, [...path, "regs"], GPR_PROGRAM_REGS), cpl: cplOf(src, m.cpl, [...path, "cpl"]) }, maxExits };
    case "fault": {
      only(["fault", "cpl"]);
      if (m.fault !== "ud2" && m.fault !== "egpr-mov") src.fail(`fault must be "ud2" or "egpr-mov"`, [...path, "fault"]);
      // CPL 3 by default: on kvm_pvm hosts CPL0 code is emulated (docs/facts.md#quirk-emulated-cpl0), CPL3 faults come from the CPU
      return { spec: { program: "fault", fault: m.fault, cpl: m.cpl === undefined ? 3 : cplOf(src, m.cpl, [...path, "cpl"]) }, maxExits };
    }
    case "cpuid-loop":
      only(["iterations"]);
      return { spec: { program: "cpuid-loop", iterations: u64(src, m.iterations ?? 1, [...path, "iterations"], "iterations") }, maxExits };
    case "cpuid":
      only(["leaf", "subleaf"]);
      return {
        spec: {
          program: "cpuid",
          leaf: small(src, m.leaf ?? 0, [...path, "leaf"], "leaf", 0xffff_ffff),
          subleaf: small(src, m.subleaf ?? 0, [...path, "subleaf"], "subleaf", 0xffff_ffff),
        },
        maxExits,
      };
    case "real-mode": {
      only(["code", "at", "ivt"]);
      const hexAt = (x: unknown, at: YamlPath, max: number): Uint8Array => {
        if (typeof x !== "string" || !/^([0-9a-fA-F]{2})+$/.test(x) || x.length / 2 > max) src.fail(`hex bytes expected, at most ${max}`, at);
        return Uint8Array.from(Buffer.from(x as string, "hex"));
      };
      const code = hexAt(m.code, [...path, "code"], 0x1000);
      const atMap = m.at === undefined ? {} : expectMap(src, m.at, [...path, "at"], Object.keys((m.at as object) ?? {}), "at");
      const chunks = Object.entries(atMap).map(([k, x]) => {
        const gpa = small(src, k, [...path, "at", k], "address", 0x1f_0000);
        if (gpa < 0x400 || (gpa < 0x2000 && gpa + 1 > 0x1000)) src.fail("an address below 0x400 (the IVT) or inside the code page 0x1000..0x1fff", [...path, "at", k], true);
        return { gpa, bytes: hexAt(x, [...path, "at", k], 0x1000) };
      });
      const ivtMap = m.ivt === undefined ? {} : expectMap(src, m.ivt, [...path, "ivt"], Object.keys((m.ivt as object) ?? {}), "ivt");
      const ivt = Object.entries(ivtMap).map(([k, x]) => ({
        vector: small(src, k, [...path, "ivt", k], "vector", 255),
        offset: small(src, x, [...path, "ivt", k], "handler offset", 0xffff),
      }));
      return { spec: { program: "real-mode", code, at: chunks, ivt }, maxExits };
    }
    default:
      return src.fail(`program must be one of xsetbv, xgetbv, mov, fault, cpuid-loop, cpuid, real-mode; got ${JSON.stringify(m.program)}`, [...path, "program"]);
  }
}

function xsaveOf(src: YamlSource, v: unknown, path: YamlPath): XsaveSpec {
  const m = expectMap(src, v, path, ["xstateBv", "xcompBv", "mxcsr", "reservedByte", "apx", "patch"], "set-xsave");
  let patch: { offset: number; bytes: Uint8Array }[] | undefined;
  if (m.patch !== undefined) {
    const pm = expectMap(src, m.patch, [...path, "patch"], Object.keys((m.patch as object) ?? {}), "patch");
    patch = Object.entries(pm).map(([k, hexText]) => {
      const at = [...path, "patch", k];
      const offset = Number(k);
      if (!/^[0-9]+$/.test(k) || offset >= 4096) src.fail(`patch key "${k}" must be a byte offset below 4096`, at, true);
      if (typeof hexText !== "string" || !/^([0-9a-fA-F]{2})+$/.test(hexText) || offset + hexText.length / 2 > 4096) {
        src.fail("patch value must be hex bytes that fit in the 4096-byte image", at);
      }
      return { offset, bytes: Uint8Array.from(Buffer.from(hexText, "hex")) };
    });
  }
  let apx: bigint[] | undefined;
  if (m.apx !== undefined) {
    if (!Array.isArray(m.apx) || m.apx.length > 16) src.fail("apx must be a list of at most 16 values (R16..R31)", [...path, "apx"]);
    apx = (m.apx as unknown[]).map((x, i) => u64(src, x, [...path, "apx", i], `apx[${i}]`));
  }
  return {
    xstateBv: m.xstateBv === undefined ? 0x3n : u64(src, m.xstateBv, [...path, "xstateBv"], "xstateBv"),
    xcompBv: m.xcompBv === undefined ? 0n : u64(src, m.xcompBv, [...path, "xcompBv"], "xcompBv"),
    mxcsr: m.mxcsr === undefined ? 0x1f80 : small(src, m.mxcsr, [...path, "mxcsr"], "mxcsr", 0xffff_ffff),
    reservedByte: m.reservedByte === undefined ? 0 : small(src, m.reservedByte, [...path, "reservedByte"], "reservedByte", 0xff),
    ...(apx ? { apx } : {}),
    ...(patch ? { patch } : {}),
  };
}

const SCALAR_MAX = { u8: 0xffn, u16: 0xffffn, u32: 0xffff_ffffn, u64: (1n << 64n) - 1n } as const;

function fieldsOf(src: YamlSource, v: unknown, path: YamlPath, struct: StructName, what: string): FieldSets {
  const m = expectMap(src, v ?? {}, path, Object.keys((v as object) ?? {}), what);
  return Object.entries(m).map(([k, x]) => {
    const at = [...path, k];
    const kind = fieldKind(struct, k);
    if (!kind) {
      const known = fieldPaths(struct);
      src.fail(`"${k}" is not a field of ${struct} (fields: ${known.slice(0, 12).join(", ")}${known.length > 12 ? ", …" : ""})`, at, true);
    }
    if (kind!.bytes !== undefined) {
      if (typeof x !== "string" || !/^([0-9a-fA-F]{2})+$/.test(x) || x.length / 2 > kind!.bytes) src.fail(`${k} takes hex bytes, at most ${kind!.bytes}`, at);
      return { path: k, value: Uint8Array.from(Buffer.from(x as string, "hex")) };
    }
    const n = u64(src, x, at, k);
    if (n > SCALAR_MAX[kind!.scalar]) src.fail(`${k} is a ${kind!.scalar}: at most 0x${SCALAR_MAX[kind!.scalar].toString(16)}`, at);
    return { path: k, value: n };
  });
}

function stepOf(src: YamlSource, raw: unknown, path: YamlPath): RealStep {
  let kind: string;
  let arg: unknown;
  let argPath: YamlPath = path;
  if (typeof raw === "string") {
    kind = raw.trim();
  } else if (raw !== null && typeof raw === "object" && !Array.isArray(raw) && Object.keys(raw).length === 1) {
    kind = Object.keys(raw)[0]!;
    arg = (raw as Record<string, unknown>)[kind];
    argPath = [...path, kind];
  } else {
    return src.fail("a step is a kind (\"get-regs\") or a one-key mapping ({ set-xcrs: 0x7 })", path);
  }
  const at = src.where(path);
  const noArg = () => {
    if (arg !== undefined && arg !== null) src.fail(`${kind} takes no argument`, argPath);
  };
  switch (kind) {
    case "set-cpuid": {
      if (arg === undefined || arg === null) return { at, kind };
      const m = expectMap(src, arg, argPath, ["xcr0Mask"], "set-cpuid");
      return m.xcr0Mask === undefined ? { at, kind } : { at, kind, xcr0Mask: u64(src, m.xcr0Mask, [...argPath, "xcr0Mask"], "xcr0Mask") };
    }
    case "set-xcrs": {
      if (typeof arg === "string" || typeof arg === "number") return { at, kind, xcr0: u64(src, arg, argPath, "xcr0"), flags: 0 };
      const m = expectMap(src, arg, argPath, ["xcr0", "flags"], "set-xcrs");
      return {
        at,
        kind,
        xcr0: u64(src, m.xcr0, [...argPath, "xcr0"], "xcr0"),
        flags: m.flags === undefined ? 0 : small(src, m.flags, [...argPath, "flags"], "flags", 0xffff_ffff),
      };
    }
    case "set-regs":
      return { at, kind, regs: regsOf(src, arg, argPath, REG_NAMES) };
    case "set-xsave":
      return { at, kind, image: xsaveOf(src, arg ?? {}, argPath) };
    case "run": {
      const p = programOf(src, arg, argPath);
      return { at, kind, spec: p.spec, maxExits: p.maxExits };
    }
    case "sync-regs": {
      const m = expectMap(src, arg, argPath, ["valid", "dirty", "regs"], "sync-regs");
      return {
        at,
        kind,
        valid: m.valid === undefined ? 0n : u64(src, m.valid, [...argPath, "valid"], "valid"),
        dirty: m.dirty === undefined ? 0n : u64(src, m.dirty, [...argPath, "dirty"], "dirty"),
        regs: m.regs === undefined ? {} : regsOf(src, m.regs, [...argPath, "regs"], REG_NAMES),
      };
    }
    case "check-extension": {
      if (typeof arg !== "string" || !Object.hasOwn(KVM_CAP, arg)) {
        return src.fail(`check-extension takes a capability name (${Object.keys(KVM_CAP).join(", ")})`, argPath);
      }
      return { at, kind, cap: arg as KvmCapName };
    }
    case "supported-cpuid": {
      const m = expectMap(src, arg, argPath, ["leaf", "subleaf", "regs"], "supported-cpuid");
      // `regs` narrows what is compared: leaf 1 EAX/EBX, for one, are the host's identity, not a KVM rule
      let regs: CpuidReg[] = [...CPUID_REGS];
      if (m.regs !== undefined) {
        if (!Array.isArray(m.regs) || m.regs.length === 0 || m.regs.some((r) => !(CPUID_REGS as readonly unknown[]).includes(r))) {
          src.fail(`regs must be a non-empty list of ${CPUID_REGS.join(", ")}`, [...argPath, "regs"]);
        }
        regs = m.regs as CpuidReg[];
      }
      return {
        at,
        kind,
        leaf: small(src, m.leaf, [...argPath, "leaf"], "leaf", 0xffff_ffff),
        subleaf: m.subleaf === undefined ? 0 : small(src, m.subleaf, [...argPath, "subleaf"], "subleaf", 0xffff_ffff),
        regs,
      };
    }
    case "set-sregs":
    case "set-fpu":
    case "set-vcpu-events":
    case "set-debugregs":
      return { at, kind, fields: fieldsOf(src, arg, argPath, SET_STRUCT[kind], kind) };
    case "get-cpuid2": {
      if (arg === undefined || arg === null) return { at, kind, prefill: 0 };
      const m = expectMap(src, arg, argPath, ["nent", "prefill"], kind);
      return {
        at,
        kind,
        ...(m.nent === undefined ? {} : { nent: small(src, m.nent, [...argPath, "nent"], "nent", 4096) }),
        prefill: m.prefill === undefined ? 0 : small(src, m.prefill, [...argPath, "prefill"], "prefill", 0xff),
      };
    }
    case "cpuid-into": {
      const m = expectMap(src, arg, argPath, ["cpuid", "nent", "prefill"], kind);
      if (m.cpuid !== "supported" && m.cpuid !== "emulated") src.fail('cpuid must be "supported" or "emulated"', [...argPath, "cpuid"]);
      return {
        at,
        kind,
        cpuid: m.cpuid as CpuidKind,
        nent: small(src, m.nent, [...argPath, "nent"], "nent", 4096),
        prefill: m.prefill === undefined ? 0 : small(src, m.prefill, [...argPath, "prefill"], "prefill", 0xff),
      };
    }
    case "device-attr": {
      const m = expectMap(src, arg ?? {}, argPath, ["group", "attr"], kind);
      return {
        at,
        kind,
        group: m.group === undefined ? 0 : small(src, m.group, [...argPath, "group"], "group", 0xffff_ffff),
        attr: m.attr === undefined ? 0n : u64(src, m.attr, [...argPath, "attr"], "attr"),
      };
    }
    case "get-into": {
      const m = expectMap(src, arg, argPath, ["ioctl", "size", "prefill"], kind);
      if (!(GET_INTO_IOCTLS as readonly unknown[]).includes(m.ioctl)) src.fail(`ioctl must be one of ${GET_INTO_IOCTLS.join(", ")}`, [...argPath, "ioctl"]);
      return {
        at,
        kind,
        ioctl: m.ioctl as VcpuGetIoctl,
        size: small(src, m.size, [...argPath, "size"], "size", 1 << 20),
        prefill: m.prefill === undefined ? 0 : small(src, m.prefill, [...argPath, "prefill"], "prefill", 0xff),
      };
    }
    case "get-xcrs":
    case "get-regs":
    case "get-sregs":
    case "get-fpu":
    case "get-xsave":
    case "get-xsave2":
    case "get-vcpu-events":
    case "get-debugregs":
    case "emulated-cpuid":
      noArg();
      return { at, kind };
    default:
      return src.fail(`unknown step "${kind}" (known: ${REAL_STEP_KINDS.join(", ")})`, typeof raw === "string" ? path : [...path, kind], typeof raw !== "string");
  }
}

function optionsOf(src: YamlSource, v: unknown, path: YamlPath): Partial<ModelOptions> {
  if (v === undefined) return {};
  const names = Object.keys(ASSUMPTIONS);
  const m = expectMap(src, v, path, names, "model.options");
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(m)) {
    const alts: readonly string[] = ASSUMPTIONS[k as AssumptionName].alternatives;
    if (typeof x !== "string" || !alts.includes(x)) src.fail(`${k} must be one of ${alts.join(", ")}`, [...path, k]);
    out[k] = x;
  }
  return out as Partial<ModelOptions>;
}

/** Parses a differential scenario (YAML or JSON text); every error is a ScenarioError at file:line:column. */
export function parseRealScenario(text: string, file: string): RealScenario {
  const src = new YamlSource(text, file);
  const top = expectMap(src, src.data, [], TOP_KEYS, "a differential scenario");
  const model = top.model === undefined ? {} : expectMap(src, top.model, ["model"], ["cpu", "design", "options"], "model");
  if (!Array.isArray(top.steps) || top.steps.length === 0) src.fail("steps must be a non-empty list", ["steps"]);
  const str = (v: unknown, path: YamlPath, what: string, dflt: string): string => {
    if (v === undefined) return dflt;
    if (typeof v !== "string" || v.length === 0) return src.fail(`${what} must be a non-empty string`, path);
    return v;
  };
  return {
    name: str(top.name, ["name"], "name", file.replace(/^.*\//, "").replace(/\.(ya?ml|json)$/, "")),
    description: str(top.description, ["description"], "description", ""),
    file,
    model: {
      cpu: str(model.cpu, ["model", "cpu"], "model.cpu", "spr"),
      design: str(model.design, ["model", "design"], "model.design", "asm-conditional"),
      options: optionsOf(src, model.options, ["model", "options"]),
    },
    steps: (top.steps as unknown[]).map((s, i) => stepOf(src, s, ["steps", i])),
  };
}

