/**
 * Applies one KvmxEvent to a (cloned) MachineState: guest events become a guest program run by one
 * KVM_RUN round trip; ioctl events run the uapi-ops semantics with the uAPI monitors; migrate,
 * RESET/INIT, NMI arming and preemption as docs/model.md#events lists them.
 */
import { InputError } from "../errors.js";
import { parseU64 } from "../cpu/hex-bytes.js";
import { gprIndex, GPR_NAMES } from "../cpu/gpr.js";
import { Tag, isHostTag } from "../cpu/provenance.js";
import { XFEATURE, XFEATURE_MASK, hasApx } from "../cpu/xfeatures.js";
import { kvmSetXcrCheck } from "../cpu/xcr0-rules.js";
import { cpuidLookup, hasCpuidFeature } from "../cpu/cpuid.js";
import type { ApplyResult, IoctlName, TraceStep } from "./explorable.js";
import { mayFollowNmi } from "./alphabet.js";
import type { KvmxEvent, SyncRegsRequest } from "./events.js";
import type { MachineState } from "./machine-state.js";
import { designByName, newVcpu, type ResolvedConfig } from "./machine.js";
import { RunCtx, type GuestOp } from "./run-context.js";
import { kvmRun, listNmiSites } from "./enter-guest.js";
import { MSR_IA32_TSC_DEADLINE } from "./emulate.js";
import { vcpuGuestSupportedXcr0, resetXcr } from "./xcr.js";
import { markAvailable } from "./register-cache.js";
import {
  KVM_REGS_FIELDS, KVM_SYNC_X86, applyXsaveUpdate, kvmCheckSyncRegs, kvmGetRegs, kvmGetXcrs, kvmGetXsave, kvmGetXsaveView, kvmSetRegs, kvmSetXcrs,
  kvmXsave2Size, xsaveUpdateFromView,
  type KvmRegs, type UapiResult, type XsaveUpdate,
} from "./uapi-ops.js";
import { checkUapiXsaveView } from "./invariants.js";
import { runResetSteps } from "./lifecycle.js";
import { FEATURE_BIT } from "./features.js";
import { setXsaveSteps, setXsaveTrackBv } from "./xfd.js";
import { applyFeatureEvent, isFeatureEvent } from "./feature-events.js";
import { val } from "../cpu/values.js";

const hex = (v: bigint): string => `0x${v.toString(16)}`;

export function parseGpr(name: string, what: string): number {
  const i = typeof name === "string" ? gprIndex(name) : undefined;
  if (i === undefined) throw new InputError(`${what}: "${String(name)}" is not a GPR name (rax … r31)`);
  return i;
}

const OUT_PORT = 0x80;
const NO_PROGRAM: readonly GuestOp[] = [];
const outOp = (): GuestOp => ({ insn: { op: "out-imm8-al", port: OUT_PORT } });
const movImm = (reg: number, value: bigint): GuestOp => ({
  insn: { op: "mov-r64-imm64", dst: reg, imm: value },
  onDone: (ctx) => ctx.st.expected.set(reg, value),
});

/** The guest program of a guest event (docs/model.md#events). */
export function guestProgram(cfg: ResolvedConfig, st: MachineState, e: KvmxEvent): GuestOp[] {
  switch (e.kind) {
    case "guest-write": {
      const r = parseGpr(e.reg as string, "guest-write reg");
      return [movImm(r, parseU64(e.value as string, "guest-write value")), outOp()];
    }
    case "guest-read": {
      const r = parseGpr(e.reg as string, "guest-read reg");
      return [{ insn: { op: "mov-r64-r64", dst: r, src: r }, onDone: (ctx) => checkGuestRead(ctx, r) }, outOp()];
    }
    case "guest-xsetbv": {
      const value = parseU64(e.value as string, "guest-xsetbv value");
      // The guest's XCR0.APX before this XSETBV, taken while the program runs: KVM's copy for a vCPU
      // whose XSETBVs exit, the live XCR0 for one whose XSETBV runs natively (a TD: KVM never sees it).
      let apxBefore = false;
      const rcx = movImm(1, 0n);
      return [
        {
          ...rcx,
          onDone: (ctx) => {
            rcx.onDone?.(ctx);
            apxBefore = ctx.vcpu.protectedState && !ctx.backend.intercepts(ctx.vcpu, { op: "xsetbv" }) ? ctx.cpu.xcr0Apx : ctx.vcpu.xcr0Apx;
          },
        },
        movImm(0, value & 0xffff_ffffn),
        movImm(2, value >> 32n),
        {
          insn: { op: "xsetbv" },
          onDone: (ctx) => {
            // Architectural effect for the guest's view: a valid XSETBV that clears APX keeps or clears
            // R16–R31 per ASSUMPTIONS.xcr0ApxDisable.
            const okArch = kvmSetXcrCheck(0, value, vcpuGuestSupportedXcr0(ctx.vcpu, cfg.supportedXcr0)) === undefined;
            if (okArch && apxBefore && !hasApx(value) && cfg.options.xcr0ApxDisable === "clear") ctx.st.expected.fill(0n, 16, 32);
          },
        },
      ];
    }
    case "guest-wrmsrns-imm": {
      const r = parseGpr(e.reg as string, "guest-wrmsrns-imm reg");
      const pre = e.value !== undefined ? [movImm(r, parseU64(e.value, "guest-wrmsrns-imm value"))] : [];
      return [...pre, { insn: { op: "wrmsrns-imm", src: r, msr: (e.msr as number | undefined) ?? MSR_IA32_TSC_DEADLINE } }, outOp()];
    }
    case "guest-rdmsr-imm": {
      const r = parseGpr(e.reg as string, "guest-rdmsr-imm reg");
      const msr = (e.msr as number | undefined) ?? MSR_IA32_TSC_DEADLINE;
      return [{ insn: { op: "rdmsr-imm", dst: r, msr }, onDone: (ctx) => ctx.st.expected.set(r, ctx.vcpu.msrs.get(msr) ?? 0n) }];
    }
    case "guest-cpuid": {
      const leaf = ((e.leaf as number | undefined) ?? 0) >>> 0;
      const subleaf = ((e.subleaf as number | undefined) ?? 0) >>> 0;
      return [
        movImm(0, BigInt(leaf)),
        movImm(1, BigInt(subleaf)),
        {
          insn: { op: "cpuid" },
          onDone: (ctx) => {
            const r = cpuidLookup(cfg.guestCpuid, leaf, subleaf);
            const x = ctx.st.expected;
            x.set(0, BigInt(r.eax >>> 0));
            x.set(3, BigInt(r.ebx >>> 0));
            x.set(1, BigInt(r.ecx >>> 0));
            x.set(2, BigInt(r.edx >>> 0));
          },
        },
      ];
    }
    case "guest-hlt":
      return [{ insn: { op: "hlt" } }];
    case "guest-io":
    case "preempt":
      return [outOp()];
    default:
      return [];
  }
  void st;
}

/**
 * guestProgram, built once per event object and configuration: events are immutable data (the
 * checker's alphabet hands out the same objects again and again), and a program depends only on
 * the event and the machine's configuration, never on the state.
 */
const programs = new WeakMap<ResolvedConfig, WeakMap<KvmxEvent, GuestOp[]>>();
function cachedProgram(cfg: ResolvedConfig, st: MachineState, e: KvmxEvent): GuestOp[] {
  let byEvent = programs.get(cfg);
  if (!byEvent) programs.set(cfg, (byEvent = new WeakMap()));
  let p = byEvent.get(e);
  if (!p) byEvent.set(e, (p = guestProgram(cfg, st, e)));
  return p;
}

/** A guest read: what the guest sees in `r` must be what it last wrote (or userspace set), never a host value. */
function checkGuestRead(ctx: RunCtx, r: number): void {
  const tag = ctx.cpu.gprTag(r);
  const got = ctx.cpu.gpr(r);
  if (isHostTag(tag)) ctx.violate("no-leak", `guest read a host value from ${GPR_NAMES[r]} (${hex(got)})`);
  else if (ctx.cpu.gprId(r) !== ctx.st.expected.id(r)) ctx.violate("guest-integrity", `guest read ${GPR_NAMES[r]} = ${hex(got)}, it last wrote ${hex(ctx.st.expected.get(r))}`);
  else if (ctx.tracing) ctx.note(`guest read ${GPR_NAMES[r]} = ${hex(got)} as expected`);
  if (ctx.observations) {
    const level = ctx.guestLevel();
    ctx.observe({ kind: "guest-read", reg: GPR_NAMES[r]!, value: got, ...(level ? { level } : {}) });
  }
}

/**
 * Applies `e` to `st` (mutated: pass a copy). With `trace`, every step is recorded; with a trace or
 * `opts.observe`, what the event showed a guest or the VMM comes back in `observations`.
 */
export function applyEvent(cfg: ResolvedConfig, st: MachineState, e: KvmxEvent, trace?: TraceStep[], opts?: { observe?: boolean }): ApplyResult<MachineState, KvmxEvent> {
  const ctx = new RunCtx(cfg, st, trace, opts?.observe);
  ctx.foldHostNmis = cfg.foldHostNmis && mayFollowNmi(e);
  switch (e.kind) {
    case "guest-write":
    case "guest-read":
    case "guest-xsetbv":
    case "guest-wrmsrns-imm":
    case "guest-rdmsr-imm":
    case "guest-cpuid":
    case "guest-hlt":
    case "guest-io":
    case "preempt":
      ctx.program = cachedProgram(cfg, st, e);
      ctx.preemptInHandleExit = e.kind === "preempt";
      kvmRunIoctl(ctx, e.syncRegs as SyncRegsRequest | undefined);
      break;
    case "vm-fail":
      if (!cfg.backend.canVmFail) throw new InputError(`vm-fail: VM-entry cannot fail on backend ${cfg.backend.name}`);
      ctx.program = NO_PROGRAM;
      ctx.vmFailRequested = true;
      kvmRunIoctl(ctx, e.syncRegs as SyncRegsRequest | undefined);
      break;
    case "guest-mov-cr4":
      ctx.step("guest:mov-cr4", "guest", "guest MOV to CR4: VM-exit (CR4.OSXSAVE is not guest-owned), kvm_set_cr4", () =>
        guestMovCr4(ctx, parseU64(e.value, "guest-mov-cr4 value")),
      );
      break;
    case "nmi": {
      const site = e.site as string;
      if (!listNmiSites(cfg).includes(site)) throw new InputError(`nmi: "${site}" is not an NMI-open site of this machine (see kvmx run --sites)`);
      ctx.step("user:arm-nmi", "user", `an NMI will arrive at ${site} during the next KVM_RUN`, () => void (st.armedNmi = site));
      break;
    }
    case "get-xsave":
      ctx.step("user:KVM_GET_XSAVE2", "user", "VMM reads the XSAVE image", () => getXsave(ctx));
      break;
    case "set-xsave":
      ctx.step("user:KVM_SET_XSAVE", "user", "VMM writes an XSAVE image", () => setXsaveEvent(ctx, e as Extract<KvmxEvent, { kind: "set-xsave" }>));
      break;
    case "get-regs":
      ctx.step("user:KVM_GET_REGS", "user", "VMM reads kvm_regs", () => getRegs(ctx));
      break;
    case "set-regs":
      ctx.step("user:KVM_SET_REGS", "user", "VMM writes kvm_regs", () => setRegsEvent(ctx, e as Extract<KvmxEvent, { kind: "set-regs" }>));
      break;
    case "set-xcrs":
      ctx.step("user:KVM_SET_XCRS", "user", "VMM writes XCR0", () => {
        const value = parseU64(e.xcr0 as string, "set-xcrs xcr0");
        const r = kvmSetXcrs(ctx, { nrXcrs: 1, flags: 0, xcrs: [{ xcr: 0, value }] });
        observeIoctl(ctx, "KVM_SET_XCRS", r);
        if (ctx.tracing) ctx.note(r.ok ? `XCR0 = ${hex(value)}` : `${r.errno}: ${r.reason}`);
        if (r.ok && cfg.options.xcr0ApxDisable === "clear" && !hasApx(value)) st.expected.fill(0n, 16, 32);
      });
      break;
    case "migrate":
      migrate(ctx, e.design as string | undefined);
      break;
    case "reset":
    case "init":
      ctx.step(`user:${e.kind}`, "user", e.kind === "reset" ? "vCPU RESET (kvm_vcpu_reset, init_event=false)" : "INIT (kvm_vcpu_reset, init_event=true)", () =>
        // A variant's machine runs kvm_vcpu_reset as its steps (lifecycle.ts), which a variant may edit.
        cfg.variant ? runResetSteps(ctx, e.kind as "reset" | "init") : vcpuReset(ctx, e.kind as "reset" | "init"),
      );
      break;
    default:
      if (isFeatureEvent(e.kind)) {
        applyFeatureEvent(ctx, e);
        break;
      }
      if (!cfg.backend.applyVendorEvent) throw new InputError(`event kind "${e.kind}" is unknown to backend ${cfg.backend.name}`);
      cfg.backend.applyVendorEvent(ctx, e);
  }
  const r: ApplyResult<MachineState, KvmxEvent> = { state: st, violations: ctx.violations, cost: ctx.cost, designActions: ctx.designActions, observations: ctx.observations };
  if (ctx.folded) r.folded = ctx.folded;
  return r;
}

/** Records an ioctl's result (only when observing). */
function observeIoctl(ctx: RunCtx, ioctl: IoctlName, r: UapiResult<unknown>): void {
  if (!ctx.observations) return;
  ctx.observe(r.ok ? { kind: "ioctl", ioctl, ok: true } : { kind: "ioctl", ioctl, ok: false, errno: r.errno, reason: r.reason });
}

/**
 * Records what KVM_GET_XSAVE2 returns now, as the image bytes (only when observing). Outside KVM_RUN
 * laying the image out reads the EGPR home and nothing else, so it changes no state.
 */
function observeXsave(ctx: RunCtx): void {
  if (!ctx.observations) return;
  const r = kvmGetXsave(ctx, kvmXsave2Size(ctx));
  if (!r.ok) return;
  const image = r.value.image;
  const apx = (image.xstateBv & XFEATURE_MASK.APX) !== 0n ? image.apxRegisters() : undefined;
  ctx.observe({ kind: "xsave", xstateBv: image.xstateBv, ...(apx ? { apx } : {}), bytes: image.bytes });
}

/** struct kvm_regs field → enum kvm_reg index of the GPR it holds (rip and rflags are not GPRs). */
const KVM_REGS_GPR: Record<string, number> = {
  rax: 0, rcx: 1, rdx: 2, rbx: 3, rsp: 4, rbp: 5, rsi: 6, rdi: 7,
  r8: 8, r9: 9, r10: 10, r11: 11, r12: 12, r13: 13, r14: 14, r15: 15,
};

/**
 * One KVM_RUN ioctl (kvm_arch_vcpu_ioctl_run) around the round trip, with KVM_CAP_SYNC_REGS
 * (docs/facts.md#sync-regs): kvm_valid_regs/kvm_dirty_regs bits outside REGS|SREGS|EVENTS (any bit
 * for protected state) → -EINVAL and nothing runs; a dirty REGS class is loaded (__set_regs) before
 * vcpu_run; every way out stores the valid REGS class (store_regs → __get_regs), the -EINVAL one too,
 * unless the state is protected. The kernel does the loading after kvm_load_guest_fpu and the storing
 * after kvm_put_guest_fpu; neither touches the FPU, so the model runs them just outside the site
 * sequence (an -EINVAL KVM_RUN also skips the FPU load and put, which change nothing the model keeps).
 */
function kvmRunIoctl(ctx: RunCtx, sync: SyncRegsRequest | undefined): void {
  if (sync === undefined) {
    kvmRun(ctx);
    if (ctx.observations) observeRun(ctx);
    return;
  }
  const valid = parseU64(sync.valid ?? "0x0", "syncRegs valid");
  const dirty = parseU64(sync.dirty ?? "0x0", "syncRegs dirty");
  const u32 = (m: bigint): number => (m >> 32n !== 0n ? 0xffff_ffff : Number(m));
  if (((valid | dirty) & BigInt(KVM_SYNC_X86.SREGS | KVM_SYNC_X86.EVENTS)) !== 0n && ((valid | dirty) & ~BigInt(KVM_SYNC_X86.REGS | KVM_SYNC_X86.SREGS | KVM_SYNC_X86.EVENTS)) === 0n) {
    throw new InputError("syncRegs: only the REGS class (1) is modelled; SREGS (2) and EVENTS (4) are the uapi model's (@kvmx/uapi)");
  }
  const check = kvmCheckSyncRegs(u32(valid), u32(dirty), ctx.protectedState);
  let ran = false;
  ctx.step("user:KVM_RUN-sync-regs", "user", `kvm_run->kvm_valid_regs ${hex(valid)}, kvm_dirty_regs ${hex(dirty)}`, () => {
    if (!check.ok) {
      observeIoctl(ctx, "KVM_RUN", check);
      if (ctx.tracing) ctx.note(`KVM_RUN fails: ${check.errno} (${check.reason})`);
      return;
    }
    ran = true;
    if ((dirty & BigInt(KVM_SYNC_X86.REGS)) !== 0n) {
      if (ctx.tracing) ctx.note("sync_regs: __set_regs from kvm_run->s.regs");
      setRegsFrom(ctx, sync.regs ?? {}, "syncRegs regs");
    }
  });
  if (ran) {
    kvmRun(ctx);
    if (ctx.observations) observeRun(ctx);
  }
  if ((valid & BigInt(KVM_SYNC_X86.REGS)) === 0n || ctx.protectedState) return;
  ctx.step("user:KVM_RUN-store-regs", "user", "store_regs: __get_regs into kvm_run->s.regs", () => {
    const r = kvmGetRegs(ctx);
    if (!r.ok) return;
    checkKvmRegs(ctx, r.value, "kvm_run->s.regs");
    ctx.observe({ kind: "sync-regs", regs: r.value });
  });
}

/** What KVM_RUN returned: success, and why the guest last stopped. */
function observeRun(ctx: RunCtx): void {
  const exit = ctx.guestExit?.kind ?? (ctx.vmFailed ? "vm-fail" : undefined);
  ctx.observe({ kind: "ioctl", ioctl: "KVM_RUN", ok: true, ...(exit ? { exit } : {}), toUserspace: ctx.disposition === "userspace" });
}

const CR4_OSXSAVE = 1n << 18n;
const CR4_PKE = 1n << 22n;
/** MOV CR4, RAX is 0F 22 E0. */
const MOV_CR4_LENGTH = 3;

/**
 * kvm_set_cr4 for a guest MOV to CR4 (docs/facts.md#xfeature-switch, #xsetbv): OSXSAVE without guest
 * CPUID XSAVE → #GP(0) (kvm_is_valid_cr4); else vcpu->arch.cr4 takes the value and stays available
 * (vmx_set_cr4/svm_set_cr4). Only OSXSAVE may change here: the model gives no other CR4 bit a meaning.
 */
function guestMovCr4(ctx: RunCtx, value: bigint): void {
  const v = ctx.vcpu;
  if (v.protectedState) throw new InputError("guest-mov-cr4: the vCPU's state is protected; KVM does not emulate its CR4 writes in this model");
  const old = v.cr4;
  // With the pkru feature CR4.PKE (bit 22) may change too (docs/facts.md#pkru).
  const mayChange = ctx.features & FEATURE_BIT.pkru ? CR4_OSXSAVE | CR4_PKE : CR4_OSXSAVE;
  if (((old ^ value) & ~mayChange) !== 0n) {
    throw new InputError(`guest-mov-cr4: only CR4.OSXSAVE (bit 18)${mayChange & CR4_PKE ? " and CR4.PKE (bit 22)" : ""} may change in the model; CR4 is ${hex(old)}, the write is ${hex(value)}`);
  }
  if ((value & CR4_OSXSAVE) !== 0n && !hasCpuidFeature(ctx.cfg.guestCpuidLookup, "XSAVE")) {
    ctx.injectException("GP", MOV_CR4_LENGTH);
    return;
  }
  // kvm_is_valid_cr4: CR4.PKE needs PKU in the guest's CPUID (CPUID.(7,0):ECX[3]).
  if ((value & CR4_PKE) !== 0n && (ctx.cfg.guestCpuidLookup(7, 0).ecx & (1 << 3)) === 0) {
    ctx.injectException("GP", MOV_CR4_LENGTH);
    return;
  }
  v.cr4 = value;
  v.cr4Osxsave = (value & CR4_OSXSAVE) !== 0n;
  markAvailable(v, v.layout.CR4);
  if (ctx.tracing) ctx.note(`CR4 ${hex(old)} → ${hex(value)} (OSXSAVE ${v.cr4Osxsave ? 1 : 0})`);
}

function getXsave(ctx: RunCtx): void {
  const r = kvmGetXsaveView(ctx, kvmXsave2Size(ctx));
  observeIoctl(ctx, "KVM_GET_XSAVE2", r);
  if (!r.ok) return ctx.note(`${r.errno}: ${r.reason}`);
  observeXsave(ctx);
  checkUapiXsaveView(ctx, r.value);
  if (ctx.tracing) ctx.note(`XSTATE_BV ${hex(r.value.xstateBv)}`);
}

/**
 * A VMM's KVM_SET_XSAVE of an edited KVM_GET_XSAVE image: component 19 replaced (`apx`) or dropped,
 * or XSTATE_BV given outright. SET-then-GET must round-trip (uapi-truth).
 */
function setXsaveEvent(ctx: RunCtx, e: Extract<KvmxEvent, { kind: "set-xsave" }>): void {
  const got = kvmGetXsaveView(ctx, kvmXsave2Size(ctx));
  observeIoctl(ctx, "KVM_GET_XSAVE2", got);
  if (!got.ok) return ctx.note(`${got.errno}: ${got.reason}`);
  const apx = e.apx as readonly string[] | undefined;
  let bv = e.xstateBv !== undefined ? parseU64(e.xstateBv as string, "set-xsave xstateBv") : got.value.xstateBv;
  if (apx) bv |= XFEATURE_MASK.APX;
  else if (e.xstateBv === undefined) bv &= ~XFEATURE_MASK.APX;
  // Without an APX component (a CPU without APX) the bit alone goes in: KVM must reject it.
  const values = apx ? Array.from({ length: 16 }, (_, k) => (apx[k] === undefined ? 0n : parseU64(apx[k]!, `set-xsave apx[${k}]`))) : undefined;
  if (ctx.features !== 0) bv = setXsaveSteps(ctx, bv);
  const u = xsaveUpdateFromView(ctx, got.value, bv, values);
  observeIoctl(ctx, "KVM_SET_XSAVE", u);
  if (!u.ok) return ctx.note(`${u.errno}: ${u.reason}`);
  const r = applyXsaveUpdate(ctx, u.value, ctx.guestTag);
  if (ctx.features !== 0) setXsaveTrackBv(ctx, bv);
  const x = ctx.st.expected;
  if (r.apxPresent) u.value.apx!.forEach((v, k) => x.set(16 + k, v));
  else if (ctx.options.setXsaveApxAbsent === "init-zeros") x.fill(0n, 16, 32);
  if (ctx.tracing) ctx.note(r.apxPresent ? "component 19 set" : `component 19 absent (${ctx.options.setXsaveApxAbsent})`);
  const back = kvmGetXsaveView(ctx, kvmXsave2Size(ctx));
  observeIoctl(ctx, "KVM_GET_XSAVE2", back);
  if (back.ok) {
    observeXsave(ctx);
    checkUapiXsaveView(ctx, back.value);
  }
}

function getRegs(ctx: RunCtx): void {
  const r = kvmGetRegs(ctx);
  observeIoctl(ctx, "KVM_GET_REGS", r);
  if (!r.ok) return ctx.note(`${r.errno}: ${r.reason}`);
  checkKvmRegs(ctx, r.value, "KVM_GET_REGS");
  if (ctx.tracing) ctx.note(`rip ${hex(r.value.rip)} rsp ${hex(r.value.rsp)}`);
}

/** Monitor uapi-truth on a struct kvm_regs KVM reported (`what`): each GPR equals the guest's value. */
function checkKvmRegs(ctx: RunCtx, regs: KvmRegs, what: string): void {
  for (const f of KVM_REGS_FIELDS) {
    const idx = KVM_REGS_GPR[f];
    if (idx === undefined) continue;
    if (regs[f] !== ctx.st.expected.get(idx)) {
      ctx.violate("uapi-truth", `${what} ${f} = ${hex(regs[f])}, the guest's value is ${hex(ctx.st.expected.get(idx))}`);
    }
  }
}

function setRegsEvent(ctx: RunCtx, e: Extract<KvmxEvent, { kind: "set-regs" }>): void {
  setRegsFrom(ctx, (e.regs ?? {}) as Record<string, string>, "set-regs");
}

/**
 * __set_regs with the named struct kvm_regs fields; the others keep the values a KVM_GET_REGS just
 * before reports (the VMM edits what KVM gave it). The guest's view follows the GPRs.
 */
function setRegsFrom(ctx: RunCtx, given: Readonly<Record<string, string>>, what: string): void {
  const cur = kvmGetRegs(ctx);
  observeIoctl(ctx, "KVM_GET_REGS", cur);
  if (!cur.ok) return ctx.note(`${cur.errno}: ${cur.reason}`);
  const regs: KvmRegs = { ...cur.value };
  for (const [k, val] of Object.entries(given)) {
    if (!(KVM_REGS_FIELDS as readonly string[]).includes(k)) throw new InputError(`${what}: "${k}" is not a struct kvm_regs field`);
    regs[k as keyof KvmRegs] = parseU64(val, `${what} ${k}`);
  }
  const r = kvmSetRegs(ctx, regs, ctx.guestTag);
  if (what === "set-regs") observeIoctl(ctx, "KVM_SET_REGS", r);
  if (!r.ok) return ctx.note(`${r.errno}: ${r.reason}`);
  for (const f of KVM_REGS_FIELDS) {
    const idx = KVM_REGS_GPR[f];
    if (idx !== undefined) ctx.st.expected.set(idx, regs[f]);
  }
}

/** QEMU-style migration: GET state on the current vCPU, SET it on a fresh one (maybe another design), continue there. */
function migrate(ctx: RunCtx, designName: string | undefined): void {
  const cfg = ctx.cfg;
  const st = ctx.st;
  const src = ctx.vcpu;
  const design = designName ? designByName(cfg, designName) : designByName(cfg, src.design);
  let image: UapiResult<XsaveUpdate> | undefined;
  let regs: KvmRegs | undefined;
  let xcr0 = 0n;
  ctx.step("user:migrate-get", "user", `GET_XSAVE2/GET_REGS/GET_XCRS on vCPU ${src.id}`, () => {
    const x = kvmGetXsaveView(ctx, kvmXsave2Size(ctx));
    const r = kvmGetRegs(ctx);
    const c = kvmGetXcrs(ctx);
    observeIoctl(ctx, "KVM_GET_XSAVE2", x);
    observeIoctl(ctx, "KVM_GET_REGS", r);
    observeIoctl(ctx, "KVM_GET_XCRS", c);
    if (!x.ok || !r.ok || !c.ok) return ctx.note("source state is not readable (protected vCPU)");
    checkUapiXsaveView(ctx, x.value);
    // What the destination's KVM_SET_XSAVE takes from the saved image (parsed once per image shape).
    image = xsaveUpdateFromView(ctx, x.value, x.value.xstateBv, x.value.egpr?.ids.map(val));
    regs = r.value;
    xcr0 = c.value.xcrs[0]!.value;
  });
  if (!image || !regs) return;
  const dst = newVcpu(cfg, st, st.vcpus.length, design);
  st.current = st.vcpus.length - 1;
  ctx.step("user:migrate-set", "user", `SET_XCRS/SET_XSAVE/SET_REGS on vCPU ${dst.id} (design ${design.name}); the VMM continues there`, () => {
    const c = kvmSetXcrs(ctx, { nrXcrs: 1, flags: 0, xcrs: [{ xcr: 0, value: xcr0 }] });
    // KVM_SET_XSAVE on the destination: its own protected-state rule, then the saved image's update.
    const x: UapiResult<unknown> = ctx.protectedState
      ? { ok: false, errno: "EINVAL", reason: "protected guest state" }
      : image!.ok
        ? { ok: true, value: applyXsaveUpdate(ctx, image!.value, Tag.guest(src.id)) }
        : image!;
    const r = kvmSetRegs(ctx, regs!, Tag.guest(src.id));
    for (const [name, res] of [["SET_XCRS", c], ["SET_XSAVE", x], ["SET_REGS", r]] as const) {
      observeIoctl(ctx, `KVM_${name}`, res);
      if (!res.ok) ctx.violate("uapi-truth", `migration: ${name} on the destination failed with ${res.errno} (${res.reason})`);
    }
    const back = kvmGetXsaveView(ctx, kvmXsave2Size(ctx));
    observeIoctl(ctx, "KVM_GET_XSAVE2", back);
    if (back.ok) {
      observeXsave(ctx);
      checkUapiXsaveView(ctx, back.value);
    }
  });
}

/**
 * kvm_vcpu_reset: regs[] is cleared as a whole (memset — with EGPRs in regs[] that includes R16–R31,
 * for INIT too), RIP = 0xfff0; RESET also sets XCR0 = FP and the EGPR reset value per ASSUMPTIONS.
 * The guest's architectural view: legacy GPRs 0; R16–R31 per egprResetValue (RESET) / egprInitValue (INIT).
 */
export function vcpuReset(ctx: RunCtx, kind: "reset" | "init"): void {
  const v = ctx.vcpu;
  const o = ctx.options;
  const x = ctx.st.expected;
  if (v.protectedState) return ctx.note("protected vCPU: reset is the module's/firmware's business");
  v.regs.fillTagged(0n, Tag.init);
  v.rip = 0xfff0n;
  v.rflags = 0x2n;
  v.regsAvail = v.layout.allMask;
  v.regsDirty = v.layout.allMask;
  resetXcr(v, kind, o);
  x.fill(0n, 0, 16);
  const egprsZeroArch = kind === "reset" ? o.egprResetValue === "zeros" : o.egprInitValue === "zeros";
  if (egprsZeroArch) x.fill(0n, 16, 32);
  if (ctx.tracing) ctx.note(`regs[] cleared${v.layout.egprsInRegs ? " (including regs[16..31])" : ""}; XCR0 ${hex(v.xcr0)}`);
}
