/**
 * The sites x86.c owns (vcpu_enter_guest and kvm_arch_vcpu_ioctl_run, in the order of
 * docs/facts.md#xfeature-switch) and the ONE place the per-site rules are applied (`runSite`): a C site in a
 * -mapxf host needs live XCR0.APX=1 (else apxf-c-needs-apx) and clobbers R16–R31 (caller-saved, psABI); an
 * armed NMI fires at its NMI-open site; design actions run at anchors. Every instruction goes through the
 * executor.
 */
import { encode } from "../cpu/instructions.js";
import { Tag, isHostTag } from "../cpu/provenance.js";
import { XFEATURE_MASK } from "../cpu/xfeatures.js";
import { val, valLow, vid } from "../cpu/values.js";
import type { Instruction } from "../cpu/instructions.js";
import { compileInstruction, type CompiledInstruction } from "../cpu/executor.js";
import { GPR_NAMES } from "../cpu/gpr.js";
import { ANCHORS, actionsAt, type Anchor, type Condition, type Design, type DesignAction } from "./designs.js";
import { HOST_KERNEL_EGPR, HOST_USER_EGPR, OTHER_TASK_EGPR } from "./host-values.js";
import { foldHostNmi, HOST_ADDR, RunCtx, runHostNmiHandler } from "./run-context.js";
import { FastpathResult, type Site } from "./vendor-ops.js";
import { checkHostXstate, guestEnters, guestLeaves } from "./feature-hooks.js";

const RAX = 0, RCX = 1, RDX = 2, RSP = 4;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Where guest code sits; every guest event starts its program there (so RIP stays bounded). */
export const GUEST_CODE = 0x10_0000n;

const ids = (f: (i: number) => bigint): number[] => Array.from({ length: 16 }, (_, i) => vid(f(i)));
const HOST_KERNEL_EGPR_ID = ids(HOST_KERNEL_EGPR);
const HOST_USER_EGPR_ID = ids(HOST_USER_EGPR);
const OTHER_TASK_EGPR_ID = ids(OTHER_TASK_EGPR);

/** The host instructions the design actions and x86.c sites execute, compiled once (no allocation per site). */
const each = (f: (r: number) => Instruction): readonly CompiledInstruction[] => Array.from({ length: 32 }, (_, r) => compileInstruction(f(r)));
const CLEAR_EGPR = each((r) => ({ op: "mov-r64-imm64", dst: r, imm: 0n }));
const LOAD_FROM_REGS = each((r) => ({ op: "mov-r64-m64", dst: r, mem: { base: RAX, disp: 8 * r } }));
const STORE_TO_REGS = each((r) => ({ op: "mov-m64-r64", mem: { base: RAX, disp: 8 * r }, src: r }));
const POP2_PAIR = each((r) => ({ op: "pop2", first: r, second: r + 1 }));
const PUSH2_PAIR = each((r) => ({ op: "push2", first: r + 1, second: r }));
const XSETBV = compileInstruction({ op: "xsetbv" });
const XSAVE_RCX = compileInstruction({ op: "xsave", mem: { base: RCX, disp: 0 } });
const XRSTOR_RCX = compileInstruction({ op: "xrstor", mem: { base: RCX, disp: 0 } });
const REGS_ID = vid(HOST_ADDR.regs);

// ---- the per-site rules ------------------------------------------------------------------------

/**
 * A site as one design runs it, resolved once per machine (enter-guest.ts plans): the design's
 * actions at its anchor, whether the site's own body still runs, and the number an armed NMI at this
 * site has in the packed state.
 */
export interface PlannedSite {
  readonly site: Site;
  readonly actions: readonly DesignAction[];
  readonly runBody: boolean;
  /** Index + 1 of the site in the machine's NMI-site list when an NMI can be taken here, else 0. */
  readonly nmiIndex: number;
  /** A model feature's work at this site (a host IRQ or a schedule armed here: feature-hooks.ts); undefined without features. */
  readonly hooks: ((ctx: RunCtx) => void) | undefined;
}

export function planSite(site: Site, design: Design, nmiSites: readonly string[]): PlannedSite {
  const actions = site.anchor ? actionsAt(design, site.anchor) : [];
  const runBody = !site.anchor || actions.length === 0 || !ANCHORS[site.anchor].replaceable;
  const nmiIndex = site.nmiOpen && site.kind !== "guest" ? nmiSites.indexOf(site.id) + 1 : 0;
  return { site, actions, runBody, nmiIndex, hooks: undefined };
}

/** Runs one site with THE per-site rules (see the file comment). */
export function runSite(ctx: RunCtx, site: Site): void {
  runPlanned(ctx, planSite(site, ctx.design, ctx.cfg.layout.nmiSites));
}

export function runPlanned(ctx: RunCtx, p: PlannedSite): void {
  const site = p.site;
  // After a VM-Fail the guest never ran: its site and the VM-exit path up to the common exit asm are skipped.
  if (site.exitPathOnly && ctx.vmFailed) return;
  ctx.beginStep(site.id);
  if (site.kind === "c") applyCRule(ctx, site.id);
  if (p.nmiIndex !== 0) {
    if (ctx.st.armedNmiIndex === p.nmiIndex) {
      ctx.st.armedNmiIndex = 0;
      runHostNmiHandler(ctx, site.id);
    } else if (ctx.foldHostNmis) foldHostNmi(ctx, site.id);
  }
  if (p.hooks !== undefined) p.hooks(ctx);
  for (const a of p.actions) runAction(ctx, a);
  if (p.runBody) site.run?.(ctx);
  if (site.kind === "guest") {
    runGuest(ctx);
    if (ctx.cfg.features !== 0) guestLeaves(ctx);
  }
  ctx.endStep(site.kind, site.description);
}

/** A site the run plan skips after a VM-Fail (the guest and the VM-exit path up to the common exit asm). */
export const exitPathOnly = (s: Site): Site => ({ ...s, exitPathOnly: true });

/** A C site in a -mapxf host: needs XCR0.APX=1, and compiled code may use R16–R31 as scratch. */
function applyCRule(ctx: RunCtx, id: string): void {
  if (!ctx.kernelApx) return;
  const cpu = ctx.cpu;
  if (!cpu.xcr0Apx) {
    ctx.violate("apxf-c-needs-apx", `C site ${id} runs in a -mapxf host with XCR0 ${hex(cpu.xcr0)} (APX off): its first R16–R31 use would #UD`);
    return;
  }
  for (let i = 0; i < 16; i++) cpu.setGprId(16 + i, HOST_KERNEL_EGPR_ID[i]!, Tag.hostKernel);
  cpu.markApxInUse();
}

// ---- design actions ----------------------------------------------------------------------------

/** Whether an action's guard holds: one condition, or every condition of a list. */
export function evalWhen(ctx: RunCtx, when: Condition | readonly Condition[]): boolean {
  if (typeof when === "string") return evalCondition(ctx, when);
  for (const c of when) if (!evalCondition(ctx, c)) return false;
  return true;
}

export function evalCondition(ctx: RunCtx, c: Condition): boolean {
  const neg = c.startsWith("!");
  const base = (neg ? c.slice(1) : c) as Exclude<Condition, `!${string}`>;
  let v: boolean;
  if (base.startsWith("flag:")) return ctx.flags.has(base.slice(5)) !== neg;
  switch (base as Exclude<typeof base, `flag:${string}`>) {
    case "always":
      v = true;
      break;
    case "cpu-apx":
      v = ctx.cpuApx;
      break;
    case "guest-xcr0-apx":
      v = ctx.vcpu.xcr0Apx;
      break;
    case "guest-cpuid-apx":
      v = ctx.vcpu.cpuid.apx;
      break;
    case "kernel-apx":
      v = ctx.kernelApx;
      break;
  }
  return neg ? !v : v;
}

function runAction(ctx: RunCtx, a: DesignAction): void {
  // A backend-protected vCPU (SEV-ES, TDX) runs none of the design's actions unless the design says
  // "apply": no branch is counted, KVM separates those paths structurally (Design.protectedGuests).
  if ((ctx.design.protectedGuests ?? "skip") === "skip" && ctx.backend.hasProtectedState(ctx.vcpu)) {
    if (ctx.tracing) ctx.note(`${a.op} not run: ${ctx.backend.name} protects this vCPU's state`);
    return;
  }
  ctx.designActions++;
  const when = a.when ?? "always";
  if (a.op === "latch") {
    // The flag costs one test where it is computed; each action that tests it pays its own branch.
    ctx.cost.branches++;
    const on = evalWhen(ctx, when);
    if (on) ctx.flags.add(a.flag ?? "");
    else ctx.flags.delete(a.flag ?? "");
    if (ctx.tracing) ctx.note(`flag ${a.flag} = ${on} (${[when].flat().join(" & ")})`);
    return;
  }
  if (when !== "always") {
    ctx.cost.branches++;
    if (!evalWhen(ctx, when)) {
      if (ctx.tracing) ctx.note(`${a.op} skipped (${[when].flat().join(" & ")} is false)`);
      return;
    }
  }
  if (a.op === "xsetbv") return designXsetbv(ctx, a.xcr0 ?? "guest");
  if (ctx.vcpu.protectedState) {
    ctx.violate("confidential", `design action ${a.op} touches the protected guest's R16–R31`);
    return;
  }
  if (a.op === "clear-egprs") {
    for (let r = 16; r < 32; r++) {
      // `xor rN, rN` is modelled as a REX2 MOV of 0 (same gate); the result is the init value.
      if (ctx.hostRun(CLEAR_EGPR[r]!)) ctx.cpu.setGprId(r, 0, Tag.init);
    }
    ctx.cost.egprClears += 16;
    ctx.note("R16–R31 cleared");
    return;
  }
  if (!ctx.vcpu.layout.egprsInRegs) {
    if (ctx.tracing) ctx.note(`${a.op}: this vCPU keeps no EGPRs in regs[] (design ${ctx.vcpu.design}); nothing to move`);
    return;
  }
  moveEgprs(ctx, a.op === "load-egprs" ? "load" : "store", a.via ?? "mov");
}

/** Moves R16–R31 between hardware and regs[16..31] through the executor (MOV or PUSH2/POP2). */
export function moveEgprs(ctx: RunCtx, dir: "load" | "store", via: "mov" | "push2pop2"): void {
  const cpu = ctx.cpu;
  if (via === "mov") {
    // The asm keeps &regs in a scratch register; it is saved and restored around the moves.
    const saved = ctx.saveGpr(RAX);
    cpu.setGprId(RAX, REGS_ID, Tag.hostKernel);
    let n = 0;
    const insns = dir === "load" ? LOAD_FROM_REGS : STORE_TO_REGS;
    for (let r = 16; r < 32; r++) if (ctx.hostRun(insns[r]!)) n++;
    ctx.restoreGpr(RAX, saved);
    if (dir === "load") ctx.cost.egprLoads += n;
    else ctx.cost.egprStores += n;
    if (ctx.tracing) ctx.note(`${dir === "load" ? "regs[16..31] → R16–R31" : "R16–R31 → regs[16..31]"} (${n} MOVs)`);
    return;
  }
  // PUSH2/POP2 with RSP pointed into regs[] (16-byte aligned): POP2 loads pairs, PUSH2 stores them.
  const savedRsp = ctx.saveGpr(RSP);
  let n = 0;
  if (dir === "load") {
    cpu.setGpr(RSP, HOST_ADDR.regs + 8n * 16n, Tag.hostKernel);
    for (let r = 16; r < 32; r += 2) if (ctx.hostRun(POP2_PAIR[r]!)) n++;
  } else {
    cpu.setGpr(RSP, HOST_ADDR.regs + 8n * 32n, Tag.hostKernel);
    for (let r = 30; r >= 16; r -= 2) if (ctx.hostRun(PUSH2_PAIR[r]!)) n++;
  }
  ctx.restoreGpr(RSP, savedRsp);
  ctx.cost.push2pop2 += n;
  if (dir === "load") ctx.cost.egprLoads += 2 * n;
  else ctx.cost.egprStores += 2 * n;
  if (ctx.tracing) ctx.note(`${dir === "load" ? "POP2 regs[16..31] → R16–R31" : "PUSH2 R16–R31 → regs[16..31]"} (${n} pairs)`);
}

/** XSETBV from host code: skipped when the live XCR0 already matches (as kvm_load_xfeatures compares). */
export function hostXsetbv(ctx: RunCtx, value: bigint, why: string): void {
  hostXsetbvId(ctx, vid(value), why);
}

/** hostXsetbv for a value id (the sites' own path: no bigint). */
export function hostXsetbvId(ctx: RunCtx, id: number, why: string): void {
  const cpu = ctx.cpu;
  if (cpu.xcr0Id === id) {
    if (ctx.tracing) ctx.note(`XCR0 already ${hex(val(id))} (${why})`);
    return;
  }
  const [lo, hi] = halves(id);
  cpu.setGprId(RCX, 0, Tag.hostKernel);
  cpu.setGprId(RAX, lo, Tag.hostKernel);
  cpu.setGprId(RDX, hi, Tag.hostKernel);
  if (ctx.hostRun(XSETBV)) {
    ctx.cost.xsetbv++;
    if (ctx.tracing) ctx.note(`XSETBV ${hex(val(id))} (${why})`);
  }
}

/** Ids of the low and high 32 bits of the value `id` (EDX:EAX operands), remembered per id. */
const HALVES: [number, number][] = [];
function halves(id: number): [number, number] {
  let h = HALVES[id];
  if (!h) {
    const v = val(id);
    HALVES[id] = h = [vid(v & 0xffff_ffffn), vid(v >> 32n)];
  }
  return h;
}
/** Id of (value of `id`) | XFEATURE_MASK.APX: the "early" XCR0. */
const WITH_APX: number[] = [];
const withApx = (id: number): number => (WITH_APX[id] ??= vid(val(id) | XFEATURE_MASK.APX));

function designXsetbv(ctx: RunCtx, target: "guest" | "host" | "early"): void {
  const v = ctx.vcpu;
  if (target !== "host" && (v.protectedState || ctx.xfeatureSwitch !== "kvm")) {
    if (v.protectedState) ctx.violate("confidential", `design issues XSETBV (${target}) for a guest whose XCR0 hardware/module owns`);
    else if (ctx.tracing) ctx.note(`XSETBV ${target} skipped: XCR0 is switched by ${ctx.xfeatureSwitch}`);
    return;
  }
  const id = target === "guest" ? v.xcr0Id : target === "host" ? ctx.hostXcr0Id : ctx.cpuApx ? withApx(v.xcr0Id) : v.xcr0Id;
  hostXsetbvId(ctx, id, XCR0_WHY[target]);
}

// ---- x86.c sites -------------------------------------------------------------------------------

function anchor(a: Anchor, id: string, run?: (ctx: RunCtx) => void): Site {
  const spec = ANCHORS[a];
  return { id, kind: spec.kind, nmiOpen: true, description: spec.description, anchor: a, ...(run ? { run: run as Site["run"] } : {}) };
}

/** kvm_load_xfeatures(vcpu, guest): skipped for protected state, hardware/module switching, or CR4.OSXSAVE=0. */
function loadXfeatures(ctx: RunCtx, guest: boolean): void {
  const v = ctx.vcpu;
  if (ctx.xfeatureSwitch !== "kvm") return ctx.note(`skipped: XCR0 is switched by ${ctx.xfeatureSwitch}`);
  if (v.protectedState) return ctx.note("skipped: protected guest state");
  if (!v.cr4Osxsave) return ctx.note("skipped: guest CR4.OSXSAVE=0");
  hostXsetbvId(ctx, guest ? v.xcr0Id : ctx.hostXcr0Id, guest ? "guest XCR0" : "host XCR0");
}
const XCR0_WHY = { guest: "guest XCR0", host: "host XCR0", early: "early XCR0" } as const;

/**
 * One XSAVE or XRSTOR of an fpstate buffer (base = its address id) with requested-feature bitmap
 * `mask` (an id) in EDX:EAX — fpu_swap_kvm_fpstate's halves, through the executor.
 */
export function fpstateOp(ctx: RunCtx, op: "xsave" | "xrstor", base: number, mask: number): void {
  const cpu = ctx.cpu;
  const [lo, hi] = halves(mask);
  cpu.setGprId(RCX, base, Tag.hostKernel);
  cpu.setGprId(RAX, lo, Tag.hostKernel);
  cpu.setGprId(RDX, hi, Tag.hostKernel);
  const moved = (valLow(mask) & APX_BIT) !== 0 && cpu.xcr0Apx;
  if (ctx.hostRun(op === "xsave" ? XSAVE_RCX : XRSTOR_RCX) && moved && base === GUEST_FP_ID) {
    if (op === "xsave") ctx.cost.xsaveBytes += 128;
    else ctx.cost.xrstorBytes += 128;
  }
}
const GUEST_FP_ID = vid(HOST_ADDR.guestFpstate);
const USER_FP_ID = vid(HOST_ADDR.userFpstate);
const APX_BIT = 1 << 19;
/** The features the guest fpstate buffer holds, as an id (0 when its state is confidential). */
const guestFpMask = (ctx: RunCtx): number => (ctx.vcpu.protectedState ? 0 : ctx.vcpu.fpstate.featuresId);

function loadGuestFpu(ctx: RunCtx): void {
  if (ctx.vcpu.protectedState) {
    ctx.note("guest FPU is confidential: only the host state is saved");
  }
  fpstateOp(ctx, "xsave", USER_FP_ID, ctx.cfg.hostFpstateMaskId);
  fpstateOp(ctx, "xrstor", GUEST_FP_ID, guestFpMask(ctx));
  ctx.guestFpuLoaded = true;
  if (ctx.tracing) ctx.note(ctx.vcpu.fpstate.features & XFEATURE_MASK.APX ? "guest fpstate (with component 19) loaded" : "guest fpstate loaded (no component 19)");
}

function putGuestFpu(ctx: RunCtx): void {
  fpstateOp(ctx, "xsave", GUEST_FP_ID, guestFpMask(ctx));
  fpstateOp(ctx, "xrstor", USER_FP_ID, ctx.cfg.hostFpstateMaskId);
  ctx.guestFpuLoaded = false;
}

export const KVM_RUN_ENTRY: readonly Site[] = [
  { id: "user:kvm-run", kind: "user", nmiOpen: false, description: "VMM calls KVM_RUN" },
  {
    id: "x86:syscall-entry", kind: "asm", nmiOpen: true,
    description: "kernel entry; a -mapxf kernel saves the task's R16–R31 here",
    run: (c) => {
      const ctx = c as RunCtx;
      if (!ctx.kernelApx) return;
      for (let i = 0; i < 16; i++) ctx.st.entryEgpr.setId(i, ctx.cpu.gprId(16 + i), ctx.cpu.gprTag(16 + i));
      ctx.note("user R16–R31 saved at entry");
    },
  },
  { id: "x86:load-guest-fpu", kind: "c", nmiOpen: true, description: "kvm_load_guest_fpu: XSAVE the task's FPU state, XRSTOR the guest fpstate", run: (c) => loadGuestFpu(c as RunCtx) },
];

export const ENTER_GUEST_PRE: readonly Site[] = [
  anchor("pre-guest-xfeatures", "x86:pre-guest-xfeatures"),
  anchor("guest-xfeatures", "x86:load-guest-xfeatures", (ctx) => loadXfeatures(ctx, true)),
  anchor("post-guest-xfeatures", "x86:post-guest-xfeatures"),
  { id: "x86:load-guest-pkru", kind: "c", nmiOpen: true, description: "load guest PKRU (kvm_load_guest_pkru)" },
];

export const FASTPATH_SITE: Site = {
  id: "x86:fastpath", kind: "c", nmiOpen: true,
  description: "exit_handlers_fastpath (IRQs off, guest XCR0 still live)",
  run: (c) => {
    const ctx = c as RunCtx;
    // A VM-Fail has no exit to handle; a design may switch the fastpath off to see what it guards.
    if (ctx.vmFailed || ctx.design.fastpath === "off") {
      ctx.fastpathResult = FastpathResult.NONE;
      if (ctx.tracing) ctx.note(ctx.vmFailed ? "VM-Fail: no fastpath" : "fastpath off in this design");
      return;
    }
    ctx.fastpathResult = ctx.backend.fastpath(ctx);
    const names = ["NONE", "REENTER_GUEST", "EXIT_HANDLED", "EXIT_USERSPACE"];
    if (ctx.tracing) ctx.note(`fastpath → ${names[ctx.fastpathResult]}`);
  },
};

export const ENTER_GUEST_POST: readonly Site[] = [
  anchor("pre-host-xfeatures", "x86:pre-host-xfeatures"),
  { id: "x86:load-host-pkru", kind: "c", nmiOpen: true, description: "load host PKRU" },
  anchor("host-xfeatures", "x86:load-host-xfeatures", (ctx) => loadXfeatures(ctx, false)),
  anchor("post-host-xfeatures", "x86:post-host-xfeatures"),
  { id: "x86:handle-exit-irqoff", kind: "c", nmiOpen: true, description: "handle_exit_irqoff", run: (c) => c.backend.handleExitIrqoff(c) },
  {
    id: "x86:handle-exit", kind: "c", nmiOpen: true, description: "handle_exit (IRQs on, preemptible)",
    run: (c) => {
      const ctx = c as RunCtx;
      if (ctx.preemptInHandleExit) {
        ctx.preemptInHandleExit = false;
        preempt(ctx);
      }
      ctx.disposition = ctx.backend.handleExit(ctx);
      if (ctx.tracing) ctx.note(`exit ${ctx.disposition === "userspace" ? "goes to userspace" : "handled in the kernel"}`);
    },
  },
];

export const KVM_RUN_EXIT: readonly Site[] = [
  { id: "x86:put-guest-fpu", kind: "c", nmiOpen: true, description: "kvm_put_guest_fpu: XSAVE the guest fpstate, XRSTOR the task's", run: (c) => putGuestFpu(c as RunCtx) },
  {
    id: "x86:syscall-exit", kind: "asm", nmiOpen: true,
    description: "return to userspace; a -mapxf kernel restores the task's R16–R31 here",
    run: (c) => {
      const ctx = c as RunCtx;
      if (!ctx.kernelApx) return;
      for (let i = 0; i < 16; i++) ctx.cpu.setGprId(16 + i, ctx.st.entryEgpr.id(i), ctx.st.entryEgpr.tag(i));
      ctx.note("user R16–R31 restored");
    },
  },
  {
    id: "user:return", kind: "user", nmiOpen: false, description: "KVM_RUN returns to the VMM",
    run: (c) => {
      checkHostIntegrity(c as RunCtx);
      checkHostXstate(c as RunCtx);
    },
  },
];

/** Monitor host-integrity: the VMM's own R16–R31 are back after KVM_RUN. */
function checkHostIntegrity(ctx: RunCtx): void {
  if (!ctx.cpuApx) return;
  const cpu = ctx.cpu;
  for (let i = 0; i < 16; i++) {
    const r = 16 + i;
    if (cpu.gprId(r) !== HOST_USER_EGPR_ID[i] || cpu.gprTag(r) !== Tag.hostUser) {
      ctx.violate("host-integrity", `VMM task's ${GPR_NAMES[r]} is ${hex(cpu.gpr(r))} after KVM_RUN, expected ${hex(HOST_USER_EGPR(i))}`);
      return;
    }
  }
}

/** vcpu_put → another task runs with APX → vcpu_load; the FPU core saves/restores the current fpstate. */
function preempt(ctx: RunCtx): void {
  const features = ctx.guestFpuLoaded ? ctx.vcpu.fpstate.features : ctx.hostXcr0;
  const base = ctx.guestFpuLoaded ? HOST_ADDR.guestFpstate : HOST_ADDR.userFpstate;
  const cpu = ctx.cpu;
  const xs = (op: "xsave" | "xrstor") => {
    cpu.setGpr(RCX, base, Tag.hostKernel);
    cpu.setGpr(RAX, features & 0xffff_ffffn, Tag.hostKernel);
    cpu.setGpr(RDX, features >> 32n, Tag.hostKernel);
    ctx.hostRun(op === "xsave" ? XSAVE_RCX : XRSTOR_RCX);
  };
  xs("xsave");
  for (let i = 0; i < 16; i++) cpu.setGprId(16 + i, OTHER_TASK_EGPR_ID[i]!, Tag.hostUser);
  cpu.markApxInUse();
  ctx.note("preempted: vcpu_put, another task ran with its own R16–R31, vcpu_load");
  xs("xrstor");
}

// ---- the guest site ----------------------------------------------------------------------------

/** Monitors guest-integrity and no-leak on what the guest can read now (R16–R31 only when XCR0.APX=1). */
export function checkGuestView(ctx: RunCtx): void {
  const cpu = ctx.cpu;
  const apxLive = cpu.xcr0Apx && cpu.cr4Osxsave && cpu.long64;
  const expected = ctx.st.expected;
  for (let r = 0; r < 32; r++) {
    if (r >= 16 && !apxLive) break;
    const tag = cpu.gprTag(r);
    if (isHostTag(tag)) {
      ctx.violate("no-leak", `guest can read a host value in ${GPR_NAMES[r]} (${hex(cpu.gpr(r))}, ${tag === Tag.hostUser ? "host-user" : "host-kernel"})`);
    } else if (cpu.gprId(r) !== expected.id(r)) {
      ctx.violate("guest-integrity", `guest's ${GPR_NAMES[r]} is ${hex(cpu.gpr(r))}, it last wrote ${hex(expected.get(r))}`);
    }
  }
}

function runGuest(ctx: RunCtx): void {
  const cpu = ctx.cpu;
  if (ctx.injected) {
    if (ctx.tracing) ctx.note(`guest takes the injected #${ctx.injected.vector}; its handler skips the instruction`);
    cpu.rip += BigInt(ctx.injected.length);
    ctx.injected = undefined;
  } else if (ctx.expectedGuestRip === undefined) {
    cpu.rip = GUEST_CODE; // the guest jumps back to its code for this event
  } else if (cpu.rip !== ctx.expectedGuestRip) {
    ctx.violate("cache-coherence", `guest resumed at RIP ${hex(cpu.rip)}, expected ${hex(ctx.expectedGuestRip)} (RIP not written back)`);
    cpu.rip = ctx.expectedGuestRip;
  }
  checkGuestView(ctx);
  if (ctx.cfg.features !== 0 && guestEnters(ctx)) return;
  if (ctx.st.armedNmi === "guest") {
    ctx.st.armedNmi = undefined;
    ctx.guestExit = { kind: "nmi" };
    ctx.expectedGuestRip = cpu.rip;
    ctx.note("NMI while the guest runs: VM-exit");
    return;
  }
  while (ctx.pc < ctx.program.length) {
    const op = ctx.program[ctx.pc]!;
    const len = insnLength(op.insn);
    const out = ctx.guestExec(op.insn);
    ctx.pc++;
    if (out.kind === "exit" && op.retryOnExit) {
      // KVM lets the instruction run again after handling the exit (no RIP advance).
      ctx.pc--;
      ctx.guestExit = guestExitOf(op.insn, len);
      ctx.expectedGuestRip = cpu.rip;
      if (ctx.tracing) ctx.note(`guest ${op.insn.op} exits (to run again)`);
      return;
    }
    if (out.kind === "exit") {
      ctx.guestExit = guestExitOf(op.insn, len);
      ctx.expectedGuestRip = cpu.rip + BigInt(len);
      op.onDone?.(ctx);
      if (ctx.tracing) ctx.note(`guest ${op.insn.op} exits`);
      return;
    }
    cpu.rip += BigInt(len);
    if (out.kind === "fault") {
      if (ctx.tracing) ctx.note(`guest #${out.vector} (${out.reason}), handled inside the guest`);
      continue;
    }
    op.onDone?.(ctx);
  }
  // Program exhausted without an exit: the preemption timer ends the slice.
  ctx.guestExit = { kind: "preemption-timer" };
  ctx.expectedGuestRip = cpu.rip;
}

/** Encoded length of a guest instruction, memoised per instruction object (guest programs are built once). */
const lengths = new WeakMap<Instruction, number>();
function insnLength(i: Instruction): number {
  let n = lengths.get(i);
  if (n === undefined) lengths.set(i, (n = encode(i).length));
  return n;
}

function guestExitOf(insn: import("../cpu/instructions.js").Instruction, length: number): import("./guest-exit.js").GuestExit {
  switch (insn.op) {
    case "xsetbv":
      return { kind: "xsetbv", length };
    case "cpuid":
      return { kind: "cpuid", length };
    case "hlt":
      return { kind: "hlt", length };
    case "out-imm8-al":
      return { kind: "io", port: insn.port, length };
    case "out-dx-al":
      return { kind: "io", port: 0, length };
    case "rdmsr-imm":
      return { kind: "rdmsr-imm", msr: insn.msr, reg: insn.dst, length };
    case "wrmsrns-imm":
      return { kind: "wrmsrns-imm", msr: insn.msr, reg: insn.src, length };
    case "wrmsr":
      return { kind: "wrmsr", length };
    case "mov-dr6-rax":
    case "mov-rax-dr6":
      return { kind: "dr-access", dr: 6, write: insn.op === "mov-dr6-rax", length };
    default:
      return { kind: "preemption-timer" };
  }
}

export { FastpathResult };
