/**
 * The working context of one event: the VendorCtx sites and backends see, the RegCacheCtx the
 * accessors see, the host/guest executor environments, and the trace/violation/cost recorders.
 * One object per `apply`; it mutates the cloned state only.
 */
import { compileInstruction, execute, executeCompiled, type CompiledInstruction, type ExecEnv, type ExecOutcome } from "../cpu/executor.js";
import { val, vid, word } from "../cpu/values.js";
import { cpuidLookup, type CpuidResult } from "../cpu/cpuid.js";
import { formatInstruction, type Instruction } from "../cpu/instructions.js";
import { Tag, describeTag, type ProvenanceTag } from "../cpu/provenance.js";
import { wordId, wordTag } from "../cpu/values.js";
import { XFEATURE_MASK } from "../cpu/xfeatures.js";
import type { PhysicalCpu } from "../cpu/physical-cpu.js";
import type { ModelOptions } from "../model-options.js";
import { zeroCost, type CostCounters, type FoldedViolations, type GuestLevel, type InvariantName, type Observation, type TraceStep, type Violation, type SiteKind } from "./explorable.js";
import type { KvmxEvent } from "./events.js";
import type { Design } from "./designs.js";
import type { GuestExit } from "./guest-exit.js";
import type { MachineState } from "./machine-state.js";
import type { ResolvedConfig } from "./machine.js";
import { maskNames } from "./regs.js";
import type { RegCacheCtx } from "./register-cache.js";
import type { VcpuIoctlCtx } from "./uapi-ops.js";
import { FastpathResult, type VendorCtx } from "./vendor-ops.js";
import { dirtyNotAvailable } from "./register-cache.js";
import type { VcpuState } from "./vcpu.js";
import { designByName } from "./machine.js";
import { vendorUninit } from "./feature-state.js";
import type { SequenceName } from "./steps.js";

export { HOST_ADDR } from "./host-values.js";
import { HOST_ADDR } from "./host-values.js";

/** Which modelled host object an address lies in, and its offset there — per value id, computed once. */
const REGION = { other: 1, regs: 2, guestFp: 3, userFp: 4 } as const;
const REGION_KIND: number[] = [];
const REGION_OFF: number[] = [];
function regionOf(base: number): number {
  const known = REGION_KIND[base];
  if (known !== undefined) return known;
  const a = val(base);
  const inside = (lo: bigint, size: bigint): boolean => a >= lo && a < lo + size;
  let kind: number = REGION.other;
  let off = 0;
  if (inside(HOST_ADDR.regs, 8n * 64n)) [kind, off] = [REGION.regs, Number(a - HOST_ADDR.regs)];
  else if (inside(HOST_ADDR.guestFpstate, 4096n)) [kind, off] = [REGION.guestFp, Number(a - HOST_ADDR.guestFpstate)];
  else if (inside(HOST_ADDR.userFpstate, 4096n)) [kind, off] = [REGION.userFp, Number(a - HOST_ADDR.userFpstate)];
  REGION_KIND[base] = kind;
  REGION_OFF[base] = off;
  return kind;
}
const INIT_WORD = word(0, Tag.init);
const SCRATCH_ID = vid(HOST_ADDR.scratch);
/** REX2 MOVs between R16..R31 and the scratch word ([RAX]), per register: the fpstate design's door. */
const SCRATCH_STORE = Array.from({ length: 32 }, (_, r) => compileInstruction({ op: "mov-m64-r64", mem: { base: 0, disp: 0 }, src: r }));
const SCRATCH_LOAD = Array.from({ length: 32 }, (_, r) => compileInstruction({ op: "mov-r64-m64", dst: r, mem: { base: 0, disp: 0 } }));

/** The executor's world for host code: the modelled kernel memory (regs[], fpstate buffers, stack). */
class HostEnv implements ExecEnv {
  readonly actor = Tag.hostKernel;
  readonly options: ModelOptions;
  constructor(private readonly ctx: RunCtx) {
    this.options = ctx.cfg.options;
  }
  load(base: number, off: number): number {
    return this.ctx.memLoad(base, off);
  }
  store(base: number, off: number, id: number, tag: ProvenanceTag): void {
    this.ctx.memStore(base, off, id, tag);
  }
  rdmsr(): bigint | undefined {
    return undefined;
  }
  wrmsr(): boolean {
    return false;
  }
  cpuid(leaf: number, subleaf: number): CpuidResult {
    return this.ctx.cfg.hostCpuidLookup(leaf, subleaf);
  }
}

/** The executor's world for guest code: no modelled guest memory; MSRs and CPUID from the vCPU. */
class GuestEnv implements ExecEnv {
  readonly options: ModelOptions;
  constructor(private readonly ctx: RunCtx) {
    this.options = ctx.cfg.options;
  }
  get actor(): ProvenanceTag {
    return this.ctx.guestTag;
  }
  /** Guest memory lives only for one event (the guest programs that XSAVE/XRSTOR PKRU use it). */
  load(base: number, off: number): number {
    return this.ctx.guestMem?.get(stackKey(base, off)) ?? INIT_WORD;
  }
  store(base: number, off: number, id: number, tag: ProvenanceTag): void {
    (this.ctx.guestMem ??= new Map()).set(stackKey(base, off), word(id, tag));
  }
  rdmsr(i: number): bigint | undefined {
    return this.ctx.vcpu.msrs.get(i) ?? 0n;
  }
  wrmsr(): boolean {
    return true;
  }
  cpuid(leaf: number, subleaf: number): CpuidResult {
    return this.ctx.cfg.guestCpuidLookup(leaf, subleaf);
  }
  intercepts(i: Instruction): boolean {
    return this.ctx.cfg.backend.intercepts(this.ctx.vcpu, i);
  }
}

/** A guest-program step: one instruction plus what it architecturally means for the guest's view. */
export interface GuestOp {
  readonly insn: Instruction;
  /** Applied to the guest's expected view when the instruction completes without a fault. */
  readonly onDone?: (ctx: RunCtx) => void;
  /** The exit does not complete the instruction: KVM re-executes it (a DR access that stops the intercept). */
  readonly retryOnExit?: boolean;
}

export class RunCtx implements VendorCtx, VcpuIoctlCtx {
  readonly cost: CostCounters = zeroCost();
  readonly violations: Violation[] = [];
  /** Violations of folded events (foldViolation); undefined while there are none. */
  folded: FoldedViolations<KvmxEvent>[] | undefined;
  /** This event checks the host NMI handler at every NMI-open host site it passes (alphabet.ts hostNmisFolded). */
  foldHostNmis = false;
  guestExit: GuestExit | undefined = undefined;
  fastpathResult: FastpathResult = FastpathResult.NONE;
  /** The guest program of this event and how far it got. */
  program: readonly GuestOp[] = [];
  pc = 0;
  /** The guest RIP the program expects at its next instruction (checked at every entry). */
  expectedGuestRip: bigint | undefined;
  /** Set by the preempt event: handle_exit is preempted by another APX-using task. */
  preemptInHandleExit = false;
  /** An exception KVM injected (XSETBV #GP): the guest takes it at the next entry. */
  injected: { vector: "GP" | "UD"; length: number } | undefined;
  /** How the exit ended (userspace or handled in kernel), for the trace. */
  disposition: "userspace" | "handled" | undefined;
  /** Flags the design's `latch` actions set in this KVM_RUN (tested with `flag:<name>`). */
  readonly flags = new Set<string>();
  /** Design actions that got past the protected-state check (a design that never acts is not exercised). */
  designActions = 0;
  /** The event asks VM-entry to fail (VMX VM-Fail: invalid guest state). */
  vmFailRequested = false;
  /** VM-entry failed in this pass: no guest instruction ran, the exit asm takes the VM-Fail path. */
  vmFailed = false;
  private stepIndex = 0;
  private notes: string[] = [];
  /** Host memory the model does not keep in the state (the kernel stack, the scratch word): word by address. */
  private stack: Map<number, number> | undefined;
  private seen: Set<string> | undefined;
  readonly guestTag: ProvenanceTag;
  readonly tracing: boolean;
  /**
   * What this event shows a guest or the VMM (explorable.ts Observation): kept when tracing or when
   * the caller asks; undefined while the checker explores, so recording costs one test.
   */
  readonly observations: Observation[] | undefined;
  private hostEnv: ExecEnv;
  private guestEnv: ExecEnv;

  constructor(
    readonly cfg: ResolvedConfig,
    readonly st: MachineState,
    readonly trace: TraceStep[] | undefined,
    observe = false,
  ) {
    this.guestTag = Tag.guest(this.vcpu.id);
    this.tracing = trace !== undefined;
    this.observations = this.tracing || observe ? [] : undefined;
    this.hostEnv = new HostEnv(this);
    this.guestEnv = new GuestEnv(this);
  }

  get vcpu(): VcpuState {
    return this.st.vcpu;
  }
  get cpu(): PhysicalCpu {
    return this.st.cpu;
  }
  get design(): Design {
    return this.vcpu.design === this.cfg.design.name ? this.cfg.design : designByName(this.cfg, this.vcpu.design);
  }
  get options() {
    return this.cfg.options;
  }
  get cpuApx() {
    return this.cfg.cpuApx;
  }
  get kernelApx() {
    return this.cfg.kernelApx;
  }
  get hostXcr0() {
    return this.cfg.hostXcr0;
  }
  get hostXcr0Id(): number {
    return this.cfg.hostXcr0Id;
  }
  get supportedXcr0() {
    return this.cfg.supportedXcr0;
  }
  get backend() {
    return this.cfg.backend;
  }
  get guestCpuid() {
    return this.cfg.guestCpuid;
  }
  injectException(vector: "GP" | "UD", length: number): void {
    this.injected = { vector, length };
    if (this.tracing) this.note(`#${vector} queued for the guest`);
    // KVM's injections here are kvm_inject_gp(vcpu, 0) (XSETBV) and kvm_queue_exception(UD): #GP(0), #UD.
    this.observations?.push({ kind: "guest-fault", vector, ...(vector === "GP" ? { errorCode: 0 } : {}), by: "kvm", detail: "queued by KVM", ...this.levelField() });
  }

  /** Records an observation (no-op unless observing: guard anything costly with `ctx.observations`). */
  observe(o: Observation): void {
    this.observations?.push(o);
  }

  /** L1 or L2 on a backend with nesting, else undefined. */
  guestLevel(): GuestLevel | undefined {
    const isGuestMode = this.cfg.backend.nested?.isGuestMode;
    return isGuestMode ? (isGuestMode(this.vcpu) ? "L2" : "L1") : undefined;
  }
  private levelField(): { level?: GuestLevel } {
    const level = this.guestLevel();
    return level ? { level } : {};
  }
  get profile() {
    return this.cfg.hostCpu;
  }
  get egprHome() {
    return this.design.egprHome;
  }
  get protectedState(): boolean {
    return this.vcpu.protectedState;
  }
  get xfeatureSwitch(): VendorCtx["xfeatureSwitch"] {
    return this.design.hardwareXcr0Switch ? "hardware" : this.cfg.backend.xfeatureSwitch;
  }

  // ---- RegCacheCtx ---------------------------------------------------------------------------

  cacheReg(reg: number): void {
    // Monitor uninit-read: a register loaded from vendor state KVM never wrote (feature vcpu-create).
    if (this.cfg.features !== 0 && vendorUninit(this.vcpu)) {
      this.violate("uninit-read", `cache_reg(${this.vcpu.layout.name(reg)}) reads vendor state (VMCS/VMCB) that KVM has not written since KVM_CREATE_VCPU`);
    }
    this.cfg.backend.cacheReg(this, reg);
  }

  /** The machine's features (features.ts bits). */
  get features(): number {
    return this.cfg.features;
  }
  /** TIF_NEED_FPU_LOAD: kernel_fpu_begin saved the FPU registers, switch_fpu_return brings them back (feature host-irq). */
  needFpuLoad = false;
  /** The guest takes a machine check at its next entry (guest-mce, feature machine-check). */
  mcePending = false;
  /** Guest memory of this event (guest XSAVE/XRSTOR): word by base id and offset. */
  guestMem: Map<number, number> | undefined;

  /** Runs the steps of one of KVM's step sequences other than KVM_RUN's (variants.ts); nothing without a variant. */
  runSequence(name: SequenceName): void {
    this.cfg.variant?.runSequence(this, name);
  }

  /** The fpstate design's EGPR door: hardware (REX2 MOV) while the guest FPU is loaded, the buffer otherwise. */
  get egpr(): RegCacheCtx["egpr"] {
    if (this.design.egprHome !== "fpstate") return undefined;
    return {
      read: (index) => this.fpEgprRead(index),
      write: (index, value, tag) => this.fpEgprWrite(index, value, tag),
    };
  }
  /** True between kvm_load_guest_fpu and kvm_put_guest_fpu. */
  guestFpuLoaded = false;

  private fpEgprRead(index: number): { value: bigint; tag: ProvenanceTag } {
    if (!this.guestFpuLoaded) {
      const f = this.vcpu.fpstate;
      return f.apxPresent ? { value: f.egpr.get(index - 16), tag: f.egpr.tag(index - 16) } : { value: 0n, tag: Tag.init };
    }
    // REX2 `mov [scratch], rN`: the executor applies the XCR0.APX gate.
    const cpu = this.cpu;
    const savedId = cpu.gprId(0);
    const savedTag = cpu.gprTag(0);
    cpu.setGprId(0, SCRATCH_ID, Tag.hostKernel);
    const ok = this.hostRun(SCRATCH_STORE[index]!);
    cpu.setGprId(0, savedId, savedTag);
    const w = this.stack?.get(stackKey(SCRATCH_ID, 0));
    return ok && w !== undefined ? { value: val(wordId(w)), tag: wordTag(w) } : { value: 0n, tag: Tag.init };
  }
  private fpEgprWrite(index: number, value: bigint, tag: ProvenanceTag): void {
    if (!this.guestFpuLoaded) {
      const f = this.vcpu.fpstate;
      if (!f.apxPresent) {
        f.egpr.fillTagged(0n, Tag.init);
        f.xstateBv |= XFEATURE_MASK.APX;
      }
      f.egpr.set(index - 16, value, tag);
      return;
    }
    (this.stack ??= new Map()).set(stackKey(SCRATCH_ID, 0), word(vid(value), tag));
    const cpu = this.cpu;
    const savedId = cpu.gprId(0);
    const savedTag = cpu.gprTag(0);
    cpu.setGprId(0, SCRATCH_ID, Tag.hostKernel);
    this.hostRun(SCRATCH_LOAD[index]!);
    cpu.setGprId(0, savedId, savedTag);
  }

  saveGpr(r: number): { id: number; tag: ProvenanceTag } {
    return { id: this.cpu.gprId(r), tag: this.cpu.gprTag(r) };
  }
  restoreGpr(r: number, s: { id: number; tag: ProvenanceTag }): void {
    this.cpu.setGprId(r, s.id, s.tag);
  }

  // ---- host memory (regs[], fpstate buffers, stack) -------------------------------------------

  /** A host memory word at val(base)+off: regs[], the two fpstate buffers' modelled words, else the stack. */
  memLoad(base: number, off: number): number {
    const r = regionOf(base);
    const at = REGION_OFF[base]! + off;
    if (r === REGION.regs) {
      const regs = this.vcpu.regs;
      const i = at >> 3;
      if (at >= 0 && i < regs.length) return word(regs.id(i), regs.tag(i));
    } else if (r === REGION.guestFp || r === REGION.userFp) {
      const w = this.fpLoad(r === REGION.guestFp, at);
      if (w !== undefined) return w;
    }
    return this.stack?.get(stackKey(base, off)) ?? INIT_WORD;
  }
  memStore(base: number, off: number, id: number, tag: ProvenanceTag): void {
    const r = regionOf(base);
    const at = REGION_OFF[base]! + off;
    if (r === REGION.regs) {
      const regs = this.vcpu.regs;
      const i = at >> 3;
      if (at >= 0 && i < regs.length) {
        regs.setId(i, id, tag);
        return;
      }
    } else if ((r === REGION.guestFp || r === REGION.userFp) && this.fpStore(r === REGION.guestFp, at, id, tag)) return;
    (this.stack ??= new Map()).set(stackKey(base, off), word(id, tag));
  }

  /** The modelled words of the two fpstate buffers: XSTATE_BV, XCOMP_BV/reserved (0), component 19. */
  private fpLoad(guest: boolean, at: number): number | undefined {
    if (at < 0 || at >= 4096) return undefined;
    if (at === 512) return word(guest ? this.vcpu.fpstate.xstateBvId : this.st.userXstateBvId, Tag.init);
    if (at === 520 || at === 528) return INIT_WORD;
    if (at >= 960 && at < 1088 && (at & 7) === 0) {
      const i = (at - 960) >>> 3;
      const slots = guest ? this.vcpu.fpstate.egpr : this.st.userFpEgpr;
      return word(slots.id(i), slots.tag(i));
    }
    return undefined;
  }
  private fpStore(guest: boolean, at: number, id: number, tag: ProvenanceTag): boolean {
    if (at < 0 || at >= 4096) return false;
    if (at === 512) {
      if (guest) this.vcpu.fpstate.xstateBvId = id;
      else this.st.userXstateBvId = id;
      return true;
    }
    if (at === 520 || at === 528) return true;
    if (at >= 960 && at < 1088 && (at & 7) === 0) {
      const i = (at - 960) >>> 3;
      (guest ? this.vcpu.fpstate.egpr : this.st.userFpEgpr).setId(i, id, tag);
      return true;
    }
    return false;
  }

  // ---- execution ------------------------------------------------------------------------------

  hostExec(insn: Instruction): boolean {
    return this.hostRun(compileInstruction(insn));
  }

  /** hostExec for an instruction compiled once (compileInstruction): what hot host code uses. */
  hostRun(c: CompiledInstruction): boolean {
    const cpu = this.cpu;
    // Host code runs at CPL 0; between events the CPU is in the VMM task at CPL 3.
    const savedCpl = cpu.cpl;
    if (savedCpl !== 0) cpu.cpl = 0;
    const out = executeCompiled(cpu, c, this.hostEnv);
    if (savedCpl !== 0) cpu.cpl = savedCpl;
    if (out.kind === "ok") return true;
    if (out.kind === "fault") {
      const text = `host #${out.vector} on \`${formatInstruction(c.insn)}\`: ${out.reason}`;
      if (out.vector === "UD") this.violate("no-host-ud", text);
      else if (c.insn.op === "xrstor" || c.insn.op === "xsave") this.violate("host-xstate", text);
      else this.note(text);
      return false;
    }
    this.note(`unexpected exit from host instruction ${c.insn.op}`);
    return true;
  }

  guestExec(insn: Instruction): ExecOutcome {
    const out = execute(this.cpu, insn, this.guestEnv);
    if (out.kind === "fault" && this.observations) {
      // Every fault the executor raises for a guest is #UD, #NM or of the "(0)" form (#GP(0), #SS(0)).
      this.observations.push({
        kind: "guest-fault", vector: out.vector, ...(out.vector === "UD" || out.vector === "NM" ? {} : { errorCode: 0 }), by: "cpu",
        detail: `${formatInstruction(insn)}: ${out.reason}`, ...this.levelField(),
      });
    }
    return out;
  }

  /** Moves a value into a host GPR as host code does (`mov reg, imm64`), through the executor. */
  hostMovImm(reg: number, value: bigint): void {
    this.hostExec({ op: "mov-r64-imm64", dst: reg, imm: value });
  }

  // ---- recording -----------------------------------------------------------------------------

  warn(message: string): void {
    this.st.warnings++;
    if (this.tracing) this.note(`WARN: ${message}`);
  }

  /**
   * A violation of an event folded into this one (`before`, e.g. an NMI armed for the current site):
   * kept apart from `violations` (the run itself goes on unbroken), one per `before` site.
   */
  foldViolation(before: KvmxEvent, invariant: InvariantName, message: string): void {
    this.folded ??= [];
    const site = this.currentSite;
    if (this.folded.some((f) => f.violations[0]!.site === site)) return;
    this.folded.push({ before, violations: [{ invariant, message, step: this.stepIndex, site }] });
  }

  violate(invariant: InvariantName, message: string): void {
    // One report per invariant and site: a broken rule tends to fire on every register at once.
    const k = `${invariant}@${this.currentSite}`;
    this.seen ??= new Set();
    if (this.seen.has(k)) return;
    this.seen.add(k);
    const v: Violation = { invariant, message, step: this.stepIndex, site: this.currentSite };
    this.violations.push(v);
    this.stepViolations.push(v);
  }

  /** Appends to the current step's description (only kept when a trace is being recorded). */
  note(text: string): void {
    if (this.trace) this.notes.push(text);
  }

  currentSite = "user";
  private stepViolations: Violation[] = [];
  private availBefore = 0n;
  private dirtyBefore = 0n;

  beginStep(site: string): void {
    this.currentSite = site;
    if (this.notes.length) this.notes = [];
    if (this.stepViolations.length) this.stepViolations = [];
    if (this.trace) {
      this.availBefore = this.vcpu.regsAvail;
      this.dirtyBefore = this.vcpu.regsDirty;
    }
  }

  endStep(kind: SiteKind, description: string): void {
    const v = this.vcpu;
    // Monitor: the cache never holds avail=0/dirty=1 (docs/facts.md#register-cache table).
    const bad = dirtyNotAvailable(v);
    if (bad !== 0n) {
      this.violate("cache-coherence", `avail=0/dirty=1 for ${maskNames(v.layout, bad).join(", ")}`);
    }
    if (this.trace) {
      const step: TraceStep = {
        site: this.currentSite,
        kind,
        description: this.notes.length ? `${description}; ${this.notes.join("; ")}` : description,
        xcr0: this.cpu.xcr0,
        egprTags: this.cpu.egprTags(),
      };
      const as = v.regsAvail & ~this.availBefore;
      const ac = this.availBefore & ~v.regsAvail;
      const ds = v.regsDirty & ~this.dirtyBefore;
      const dc = this.dirtyBefore & ~v.regsDirty;
      const m = step as { -readonly [K in keyof TraceStep]: TraceStep[K] };
      if (as) m.availSet = maskNames(v.layout, as);
      if (ac) m.availCleared = maskNames(v.layout, ac);
      if (ds) m.dirtySet = maskNames(v.layout, ds);
      if (dc) m.dirtyCleared = maskNames(v.layout, dc);
      if (this.stepViolations.length) m.violations = this.stepViolations;
      this.trace.push(step);
    }
    this.stepIndex++;
  }

  /** A step that is not a site of the world switch (an ioctl, a userspace action). */
  step(site: string, kind: SiteKind, description: string, body: () => void): void {
    this.beginStep(site);
    body();
    this.endStep(kind, description);
  }

  hwSwapXfeatures(to: "guest" | "host"): void {
    const v = this.vcpu;
    if (to === "guest") {
      this.cpu.xcr0 = v.xcr0;
      this.cpu.xss = v.xss;
      if (this.tracing) this.note(`hardware loads guest XCR0 0x${v.xcr0.toString(16)}`);
    } else {
      this.cpu.xcr0 = this.cfg.hostXcr0;
      this.cpu.xss = 0n;
      if (this.tracing) this.note(`hardware restores host XCR0 0x${this.cfg.hostXcr0.toString(16)}`);
    }
  }

  runHostNmi(where: string): void {
    runHostNmiHandler(this, where);
  }
}

/**
 * Whether a host NMI handler can change anything the model tracks: only a -mapxf kernel's handler
 * touches R16–R31 (and needs XCR0.APX); an ordinary kernel's handler leaves every modelled register
 * and XCR0 as it found them (runHostNmiHandler below), so an NMI at a host site is then invisible.
 */
export const hostNmiHandlerObservable = (cfg: Pick<ResolvedConfig, "kernelApx">): boolean => cfg.kernelApx;

/**
 * The host NMI handler (noinstr C): in a -mapxf host its entry must save the interrupted R16–R31
 * (it may interrupt code using them) and that save needs XCR0.APX=1; it restores them on return.
 */
export function runHostNmiHandler(ctx: RunCtx, where: string): void {
  if (ctx.tracing) ctx.note(`host NMI handler runs at ${where}`);
  if (!ctx.kernelApx) return;
  const fault = hostNmiHandlerFault(ctx, where);
  if (fault !== undefined) {
    ctx.violate("apxf-c-needs-apx", fault);
    return;
  }
  // The handler saves the interrupted R16–R31, uses them, and restores them on return.
  const cpu = ctx.cpu;
  const saved = Array.from({ length: 16 }, (_, i) => ctx.saveGpr(16 + i));
  for (let i = 0; i < 16; i++) cpu.setGprId(16 + i, NMI_EGPR_ID[i]!, Tag.hostKernel);
  saved.forEach((s, i) => ctx.restoreGpr(16 + i, s));
}

/**
 * What goes wrong when the host NMI handler runs here: in a -mapxf host with the live XCR0 lacking
 * APX, its entry's R16–R31 save #UDs (the message); undefined when it runs cleanly — it then leaves
 * every register and XCR0 as it found them (runHostNmiHandler), which host-NMI folding relies on.
 */
export function hostNmiHandlerFault(ctx: RunCtx, where: string): string | undefined {
  if (!ctx.kernelApx || ctx.cpu.xcr0Apx) return undefined;
  return `NMI handler (C, -mapxf host) entered at ${where} with XCR0 0x${ctx.cpu.xcr0.toString(16)}: its R16–R31 save would #UD`;
}

/**
 * A folded host NMI (AlphabetOptions.hostNmi "folded") at `where`: the handler is checked as if an
 * `nmi` event had armed it for this site; what it breaks is kept apart (RunCtx.folded), the run goes on.
 */
export function foldHostNmi(ctx: RunCtx, where: string): void {
  const fault = hostNmiHandlerFault(ctx, where);
  if (fault !== undefined) ctx.foldViolation({ kind: "nmi", site: where }, "apxf-c-needs-apx", fault);
}

/** What a -mapxf NMI handler leaves in R16–R31 while it runs ("NMI"). */
const NMI_EGPR_ID = Array.from({ length: 16 }, (_, i) => vid(0x4e4d_4900_0000_0000n + BigInt(i)));

/** Key of a host memory word the state does not keep (stack, scratch): base value id and offset. */
const stackKey = (base: number, off: number): number => base * 65536 + (off & 0xffff);

export const tagName = describeTag;
