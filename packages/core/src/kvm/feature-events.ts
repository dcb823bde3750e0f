/**
 * The events the model features add (features.ts), their guest programs, and the alphabet entries a
 * checker run switches on (AlphabetOptions.extra — never part of the default alphabet). Each event
 * needs its feature in the machine's variant. Guest reads of PKRU, DR6 and CR3 are where the
 * guest-state monitor runs. docs/model.md#events.
 */
import { InputError } from "../errors.js";
import { parseU64 } from "../cpu/hex-bytes.js";
import type { Instruction } from "../cpu/instructions.js";
import { VALUES, vid } from "../cpu/values.js";
import { FEATURE_BIT, featureNames, type Feature } from "./features.js";
import {
  HOST_PKRU_ID, MSR_IA32_XFD, expectedCr3Id, expectedDr6Id, expectedPkruId, guestXcr0Pkru, hexId, setArmedIrq, setArmedSched,
  setExpectedCr3Id, setExpectedDr6Id, setExpectedPkruId,
} from "./feature-state.js";
import type { KvmxEvent } from "./events.js";
import { kvmRun } from "./enter-guest.js";
import { MSR_IA32_TSC_DEADLINE } from "./emulate.js";
import type { ResolvedConfig } from "./machine.js";
import type { GuestOp, RunCtx } from "./run-context.js";
import { createVcpuEvent } from "./lifecycle.js";

/** Every event kind a feature adds, the feature it needs, and its fields (required, optional). */
export const FEATURE_EVENTS = {
  irq: { feature: "host-irq", required: ["site"], optional: [], shorthand: ["site"], doc: "arms a host IRQ (its handler uses kernel_fpu_begin) at an IRQ-open site of the next KVM_RUN" },
  "sched-out": { feature: "sched-out", required: ["site"], optional: [], shorthand: ["site"], doc: "arms a schedule of the vCPU thread at a preemptible site of the next KVM_RUN" },
  "guest-mce": { feature: "machine-check", required: [], optional: [], shorthand: [], doc: "a KVM_RUN whose guest takes a machine check" },
  "guest-dr6": { feature: "dr6", required: ["value"], optional: ["fastpath"], shorthand: ["value", "fastpath"], doc: "the guest writes DR6, (with fastpath: a WRMSR to IA32_TSC_DEADLINE, which the fastpath handles,) reads DR6 back" },
  "guest-write-cr3": { feature: "cr3", required: ["value"], optional: [], shorthand: ["value"], doc: "the guest loads CR3 (no VM-exit with EPT)" },
  "guest-read-cr3": { feature: "cr3", required: [], optional: [], shorthand: [], doc: "the guest reads CR3" },
  "guest-wrpkru": { feature: "pkru", required: ["value"], optional: [], shorthand: ["value"], doc: "the guest's WRPKRU (#UD without CR4.PKE)" },
  "guest-rdpkru": { feature: "pkru", required: [], optional: [], shorthand: [], doc: "the guest's RDPKRU (#UD without CR4.PKE)" },
  "guest-xrstor-pkru": { feature: "pkru", required: ["value"], optional: [], shorthand: ["value"], doc: "the guest writes PKRU with XRSTOR (needs XCR0.PKRU, not CR4.PKE)" },
  "guest-xsave-pkru": { feature: "pkru", required: [], optional: [], shorthand: [], doc: "the guest reads PKRU with XSAVE (needs XCR0.PKRU, not CR4.PKE)" },
  "guest-tileloadd": { feature: "xfd", required: [], optional: [], shorthand: [], doc: "the guest uses AMX tile data (TILELOADD; #NM while XFD[18]=1)" },
  "guest-wrmsr-xfd": { feature: "xfd", required: ["value"], optional: [], shorthand: ["value"], doc: "the guest writes IA32_XFD (WRMSR, emulated by KVM)" },
  "create-vcpu": { feature: "vcpu-create", required: [], optional: [], shorthand: [], doc: "KVM_CREATE_VCPU of another vCPU, which the VMM then runs" },
} as const satisfies Record<string, { feature: Feature; required: readonly string[]; optional: readonly string[]; shorthand: readonly string[]; doc: string }>;
export type FeatureEventKind = keyof typeof FEATURE_EVENTS;
export const FEATURE_EVENT_KINDS = Object.keys(FEATURE_EVENTS) as FeatureEventKind[];

export const isFeatureEvent = (kind: string): kind is FeatureEventKind => Object.hasOwn(FEATURE_EVENTS, kind);

/** What a checker run offers of the feature events (AlphabetOptions.extra); absent entries: none. */
export interface FeatureAlphabet {
  /** irq events at every IRQ-open site (true) or at these. */
  readonly irq?: boolean | readonly string[];
  /** sched-out events at every preemptible site (true) or at these. */
  readonly schedOut?: boolean | readonly string[];
  readonly mce?: boolean;
  /** DR6 values the guest writes (each with and without a fastpath exit before it reads DR6 back). */
  readonly dr6?: readonly string[];
  /** CR3 values the guest loads (and a guest-read-cr3). */
  readonly cr3?: readonly string[];
  /** PKRU values the guest writes with WRPKRU and with XRSTOR (and the two reads). */
  readonly pkru?: readonly string[];
  /** IA32_XFD values the guest writes (and a guest-tileloadd). */
  readonly xfd?: readonly string[];
  /** XSTATE_BV values of set-xsave events (KVM_SET_XSAVE of the current image with that XSTATE_BV). */
  readonly xstateBv?: readonly string[];
  /** CR4 values of guest-mov-cr4 events. */
  readonly cr4?: readonly string[];
  readonly createVcpu?: boolean;
}

const RAX = 0, RCX = 1, RDX = 2, RBX = 3;
const LOW = VALUES.low;
/** Where the guest programs keep their XSAVE area (64-byte aligned, canonical). */
const GUEST_XSAVE_AREA = 0x20_0000n;
const PKRU_BIT = 0x200n;

const movImm = (reg: number, value: bigint): GuestOp => ({
  insn: { op: "mov-r64-imm64", dst: reg, imm: value },
  onDone: (ctx) => ctx.st.expected.set(reg, value),
});
const OUT: GuestOp = { insn: { op: "out-imm8-al", port: 0x80 } };
const I = <T extends Instruction>(i: T): T => i;

/** After a guest instruction put `value` (an id) in RAX: the guest's view of RAX is what it got. */
const gotRax = (ctx: RunCtx): number => {
  const id = ctx.cpu.gprId(RAX);
  ctx.st.expected.setId(RAX, id);
  return id;
};

function checkGuestState(ctx: RunCtx, what: "PKRU" | "DR6" | "CR3", got: number, want: number): void {
  if (got === want) {
    if (ctx.tracing) ctx.note(`guest reads ${what} ${hexId(got)} as expected`);
    return;
  }
  const host = what === "PKRU" && got === HOST_PKRU_ID ? " — the host's" : "";
  ctx.violate("guest-state", `guest reads ${what} ${hexId(got)}${host}, its own is ${hexId(want)}`);
}

/** The guest program of a feature event (built once per event and machine). */
function program(cfg: ResolvedConfig, e: KvmxEvent): GuestOp[] {
  const value = (f: string): bigint => parseU64((e as Record<string, unknown>)[f], `${e.kind} ${f}`);
  switch (e.kind as FeatureEventKind) {
    case "guest-dr6": {
      const v = value("value");
      const ops: GuestOp[] = [
        movImm(RAX, v),
        { insn: I({ op: "mov-dr6-rax" }), retryOnExit: true, onDone: (ctx) => setExpectedDr6Id(ctx.st, vid(v)) },
      ];
      const fast = (e as Record<string, unknown>).fastpath;
      if (fast === true || fast === "true") {
        // WRMSR(IA32_TSC_DEADLINE): an exit the fastpath handles and re-enters from (handle_fastpath_wrmsr).
        ops.push(movImm(RCX, BigInt(MSR_IA32_TSC_DEADLINE)), movImm(RAX, 0n), movImm(RDX, 0n), { insn: I({ op: "wrmsr" }) });
      }
      ops.push({ insn: I({ op: "mov-rax-dr6" }), retryOnExit: true, onDone: (ctx) => checkGuestState(ctx, "DR6", gotRax(ctx), expectedDr6Id(ctx.st)) }, OUT);
      return ops;
    }
    case "guest-write-cr3": {
      const v = value("value");
      return [movImm(RAX, v), { insn: I({ op: "mov-cr3-rax" }), onDone: (ctx) => setExpectedCr3Id(ctx.st, vid(v)) }, OUT];
    }
    case "guest-read-cr3":
      return [{ insn: I({ op: "mov-rax-cr3" }), onDone: (ctx) => checkGuestState(ctx, "CR3", gotRax(ctx), expectedCr3Id(ctx.st)) }, OUT];
    case "guest-wrpkru": {
      const v = value("value") & 0xffff_ffffn;
      return [movImm(RCX, 0n), movImm(RDX, 0n), movImm(RAX, v), { insn: I({ op: "wrpkru" }), onDone: (ctx) => setExpectedPkruId(ctx.st, vid(v)) }, OUT];
    }
    case "guest-rdpkru":
      return [
        movImm(RCX, 0n),
        {
          insn: I({ op: "rdpkru" }),
          onDone: (ctx) => {
            ctx.st.expected.setId(RDX, ctx.cpu.gprId(RDX));
            checkGuestState(ctx, "PKRU", vid(BigInt(LOW[gotRax(ctx)]!)), expectedPkruId(ctx.st));
          },
        },
        OUT,
      ];
    case "guest-xrstor-pkru": {
      const v = value("value") & 0xffff_ffffn;
      const off = cfg.guestCpuidLookup(0xd, 9).ebx;
      return [
        movImm(RBX, GUEST_XSAVE_AREA),
        movImm(RAX, PKRU_BIT),
        { insn: I({ op: "mov-m64-r64", mem: { base: RBX, disp: 512 }, src: RAX }) },
        movImm(RAX, v),
        { insn: I({ op: "mov-m64-r64", mem: { base: RBX, disp: off }, src: RAX }) },
        movImm(RAX, PKRU_BIT),
        movImm(RDX, 0n),
        {
          insn: I({ op: "xrstor", mem: { base: RBX, disp: 0 } }),
          // XRSTOR loads PKRU only while XCR0.PKRU=1 (the requested-feature bitmap is EDX:EAX ∧ XCR0).
          onDone: (ctx) => {
            if (guestXcr0Pkru(ctx.vcpu)) setExpectedPkruId(ctx.st, vid(v));
          },
        },
        OUT,
      ];
    }
    case "guest-xsave-pkru": {
      const off = cfg.guestCpuidLookup(0xd, 9).ebx;
      return [
        movImm(RBX, GUEST_XSAVE_AREA),
        movImm(RAX, PKRU_BIT),
        movImm(RDX, 0n),
        { insn: I({ op: "xsave", mem: { base: RBX, disp: 0 } }) },
        {
          insn: I({ op: "mov-r64-m64", dst: RAX, mem: { base: RBX, disp: off } }),
          onDone: (ctx) => {
            const got = gotRax(ctx);
            if (guestXcr0Pkru(ctx.vcpu)) checkGuestState(ctx, "PKRU", vid(BigInt(LOW[got]!)), expectedPkruId(ctx.st));
          },
        },
        OUT,
      ];
    }
    case "guest-tileloadd":
      return [{ insn: I({ op: "tileloadd" }) }, OUT];
    case "guest-wrmsr-xfd": {
      const v = value("value");
      return [movImm(RCX, BigInt(MSR_IA32_XFD)), movImm(RAX, v & 0xffff_ffffn), movImm(RDX, v >> 32n), { insn: I({ op: "wrmsr" }) }, OUT];
    }
    default:
      return [];
  }
}

const programs = new WeakMap<ResolvedConfig, WeakMap<KvmxEvent, GuestOp[]>>();
function cachedProgram(cfg: ResolvedConfig, e: KvmxEvent): GuestOp[] {
  let byEvent = programs.get(cfg);
  if (!byEvent) programs.set(cfg, (byEvent = new WeakMap()));
  let p = byEvent.get(e);
  if (!p) byEvent.set(e, (p = program(cfg, e)));
  return p;
}

/** Applies a feature event (apply-event.ts hands them over). */
export function applyFeatureEvent(ctx: RunCtx, e: KvmxEvent): void {
  const kind = e.kind as FeatureEventKind;
  const spec = FEATURE_EVENTS[kind];
  if ((ctx.features & FEATURE_BIT[spec.feature]) === 0) {
    const on = featureNames(ctx.features);
    throw new InputError(`event ${kind} needs feature ${spec.feature} in the machine's variant (features now: ${on.length ? on.join(", ") : "none"})`);
  }
  const st = ctx.st;
  const variant = ctx.cfg.variant!;
  switch (kind) {
    case "irq":
    case "sched-out": {
      const sites = kind === "irq" ? variant.irqSites : variant.schedSites;
      const site = String((e as Record<string, unknown>).site);
      const i = sites.indexOf(site);
      if (i < 0) throw new InputError(`${kind}: "${site}" is not ${kind === "irq" ? "an IRQ-open" : "a preemptible"} site of this machine (known: ${sites.join(", ")})`);
      ctx.step(`user:arm-${kind}`, "user", `${kind === "irq" ? "a host IRQ" : "a schedule of the vCPU thread"} will come at ${site} during the next KVM_RUN`, () =>
        kind === "irq" ? setArmedIrq(st, i + 1) : setArmedSched(st, i + 1),
      );
      return;
    }
    case "create-vcpu":
      ctx.step("user:KVM_CREATE_VCPU", "user", "KVM_CREATE_VCPU (kvm_arch_vcpu_create); the VMM runs the new vCPU", () => createVcpuEvent(ctx));
      return;
    case "guest-mce":
      ctx.program = [];
      ctx.mcePending = true;
      kvmRun(ctx);
      return;
    default:
      ctx.program = cachedProgram(ctx.cfg, e);
      kvmRun(ctx);
  }
}

/** The feature events a checker run offers (alphabet.ts), built once per machine. */
export function featureAlphabet(cfg: ResolvedConfig, a: FeatureAlphabet, firstVcpu: boolean): KvmxEvent[] {
  const out: KvmxEvent[] = [];
  const v = cfg.variant;
  const f = cfg.features;
  const need = (feature: Feature, what: string): void => {
    if ((f & FEATURE_BIT[feature]) === 0) throw new InputError(`alphabet ${what} needs feature ${feature} in the machine's variant`);
  };
  if (a.irq) {
    need("host-irq", "irq");
    for (const s of a.irq === true ? v!.irqSites : a.irq) out.push({ kind: "irq", site: s });
  }
  if (a.schedOut) {
    need("sched-out", "schedOut");
    for (const s of a.schedOut === true ? v!.schedSites : a.schedOut) out.push({ kind: "sched-out", site: s });
  }
  if (a.mce) {
    need("machine-check", "mce");
    out.push({ kind: "guest-mce" });
  }
  if (a.dr6) {
    need("dr6", "dr6");
    for (const x of a.dr6) out.push({ kind: "guest-dr6", value: x }, { kind: "guest-dr6", value: x, fastpath: true });
  }
  if (a.cr3) {
    need("cr3", "cr3");
    for (const x of a.cr3) out.push({ kind: "guest-write-cr3", value: x });
    out.push({ kind: "guest-read-cr3" });
  }
  if (a.pkru) {
    need("pkru", "pkru");
    for (const x of a.pkru) out.push({ kind: "guest-wrpkru", value: x }, { kind: "guest-xrstor-pkru", value: x });
    out.push({ kind: "guest-rdpkru" }, { kind: "guest-xsave-pkru" });
  }
  if (a.xfd) {
    need("xfd", "xfd");
    for (const x of a.xfd) out.push({ kind: "guest-wrmsr-xfd", value: x });
    out.push({ kind: "guest-tileloadd" });
  }
  for (const x of a.xstateBv ?? []) out.push({ kind: "set-xsave", xstateBv: x });
  for (const x of a.cr4 ?? []) out.push({ kind: "guest-mov-cr4", value: x });
  if (a.createVcpu && firstVcpu) {
    need("vcpu-create", "createVcpu");
    out.push({ kind: "create-vcpu" });
  }
  return out;
}
