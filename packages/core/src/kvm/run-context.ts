/**
 * The working context of one event: the VendorCtx sites and backends see, the RegCacheCtx the
 * accessors see, the host/guest executor environments, and the trace/violation/cost recorders.
 * One object per `apply`; it mutates the cloned state only.
 */
import { execute, type ExecEnv, type ExecOutcome, type TaggedWord } from "../cpu/executor.js";
import { cpuidLookup, type CpuidResult } from "../cpu/cpuid.js";
import { formatInstruction, type Instruction } from "../cpu/instructions.js";
import { Tag, describeTag, type ProvenanceTag } from "../cpu/provenance.js";
import { XFEATURE_MASK } from "../cpu/xfeatures.js";
import type { PhysicalCpu } from "../cpu/physical-cpu.js";
import { zeroCost, type CostCounters, type InvariantName, type TraceStep, type Violation, type SiteKind } from "./explorable.js";
import type { Design } from "./designs.js";
import type { GuestExit } from "./guest-exit.js";
import type { MachineState } from "./machine-state.js";
import type { ResolvedConfig } from "./machine.js";
import { maskNames } from "./regs.js";
import type { RegCacheCtx } from "./register-cache.js";
import type { VcpuIoctlCtx } from "./uapi-ops.js";
import { FastpathResult, type HostMemory, type VendorCtx } from "./vendor-ops.js";
import type { VcpuState } from "./vcpu.js";
import { designByName } from "./machine.js";

/** Where the model's host memory objects sit (64-byte aligned, canonical kernel addresses). */
export const HOST_ADDR = {
  /** &vcpu->arch.regs[0]. */
  regs: 0xffff_8880_0010_0000n,
  /** The guest fpstate buffer (XSAVE standard format). */
  guestFpstate: 0xffff_8880_0020_0000n,
  /** The VMM task's fpstate buffer. */
  userFpstate: 0xffff_8880_0030_0000n,
  /** Top of the kernel stack (16-byte aligned). */
  stackTop: 0xffff_c900_0000_8000n,
  /** Scratch word for REX2 reads of a single EGPR (fpstate design). */
  scratch: 0xffff_8880_0040_0000n,
} as const;

const REGS_LO = HOST_ADDR.regs;
const REGS_HI = HOST_ADDR.regs + 8n * 64n;
const FP_LO = HOST_ADDR.guestFpstate;
const FP_HI = HOST_ADDR.userFpstate + 4096n;
const INIT_WORD: TaggedWord = Object.freeze({ value: 0n, tag: Tag.init });

/** A guest-program step: one instruction plus what it architecturally means for the guest's view. */
export interface GuestOp {
  readonly insn: Instruction;
  /** Applied to the guest's expected view when the instruction completes without a fault. */
  readonly onDone?: (ctx: RunCtx) => void;
}

export class RunCtx implements VendorCtx, VcpuIoctlCtx {
  readonly cost: CostCounters = zeroCost();
  readonly violations: Violation[] = [];
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
  private stepIndex = 0;
  private notes: string[] = [];
  private stack = new Map<bigint, TaggedWord>();
  private seen = new Set<string>();
  readonly guestTag: ProvenanceTag;
  private hostEnv: ExecEnv;
  private guestEnv: ExecEnv;

  constructor(
    readonly cfg: ResolvedConfig,
    readonly st: MachineState,
    readonly trace: TraceStep[] | undefined,
  ) {
    this.guestTag = Tag.guest(this.vcpu.id);
    const self = this;
    const hostCpuid = (l: number, s: number): CpuidResult => cpuidLookup(cfg.hostCpu.cpuid, l, s);
    const guestCpuid = (l: number, s: number): CpuidResult => cpuidLookup(cfg.guestCpuid, l, s);
    this.hostEnv = {
      actor: Tag.hostKernel,
      load: (a) => self.memLoad(a),
      store: (a, v, t) => self.memStore(a, v, t),
      rdmsr: () => undefined,
      wrmsr: () => false,
      cpuid: hostCpuid,
      options: cfg.options,
    };
    this.guestEnv = {
      get actor() {
        return self.guestTag;
      },
      load: () => ({ value: 0n, tag: Tag.init }),
      store: () => undefined,
      rdmsr: (i) => self.vcpu.msrs.get(i) ?? 0n,
      wrmsr: () => true,
      cpuid: guestCpuid,
      intercepts: (i) => cfg.backend.intercepts(self.vcpu, i),
      options: cfg.options,
    };
  }

  get vcpu(): VcpuState {
    return this.st.vcpus[this.st.current]!;
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
    this.note(`#${vector} queued for the guest`);
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
    this.cfg.backend.cacheReg(this, reg);
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
      const present = (f.xstateBv & XFEATURE_MASK.APX) !== 0n;
      return present ? { value: f.egpr[index - 16]!, tag: f.egprTag[index - 16]! } : { value: 0n, tag: Tag.init };
    }
    // REX2 `mov [scratch], rN`: the executor applies the XCR0.APX gate.
    const saved = this.saveGpr(0);
    this.cpu.setGpr(0, HOST_ADDR.scratch, Tag.hostKernel);
    const ok = this.hostExec({ op: "mov-m64-r64", mem: { base: 0, disp: 0 }, src: index });
    this.restoreGpr(0, saved);
    const w = this.stack.get(HOST_ADDR.scratch);
    return ok && w ? { value: w.value, tag: w.tag } : { value: 0n, tag: Tag.init };
  }
  private fpEgprWrite(index: number, value: bigint, tag: ProvenanceTag): void {
    if (!this.guestFpuLoaded) {
      const f = this.vcpu.fpstate;
      if ((f.xstateBv & XFEATURE_MASK.APX) === 0n) {
        f.egpr.fill(0n);
        f.egprTag.fill(Tag.init);
        f.xstateBv |= XFEATURE_MASK.APX;
      }
      f.egpr[index - 16] = value;
      f.egprTag[index - 16] = tag;
      return;
    }
    this.stack.set(HOST_ADDR.scratch, { value, tag });
    const saved = this.saveGpr(0);
    this.cpu.setGpr(0, HOST_ADDR.scratch, Tag.hostKernel);
    this.hostExec({ op: "mov-r64-m64", dst: index, mem: { base: 0, disp: 0 } });
    this.restoreGpr(0, saved);
  }

  saveGpr(r: number): { value: bigint; tag: ProvenanceTag } {
    return { value: this.cpu.gpr[r]!, tag: this.cpu.gprTag[r]! };
  }
  restoreGpr(r: number, s: { value: bigint; tag: ProvenanceTag }): void {
    this.cpu.setGpr(r, s.value, s.tag);
  }

  // ---- host memory (regs[], fpstate buffers, stack) -------------------------------------------

  memLoad(addr: bigint): TaggedWord {
    const v = this.vcpu;
    if (addr >= REGS_LO && addr < REGS_HI) {
      const i = Number(addr - REGS_LO) >>> 3;
      if (i < v.regs.length) return { value: v.regs[i]!, tag: v.regsTag[i]! };
    } else if (addr >= FP_LO && addr < FP_HI) {
      const w = this.fpLoad(addr);
      if (w) return w;
    }
    return this.stack.get(addr) ?? INIT_WORD;
  }
  memStore(addr: bigint, value: bigint, tag: ProvenanceTag): void {
    const v = this.vcpu;
    if (addr >= REGS_LO && addr < REGS_HI) {
      const i = Number(addr - REGS_LO) >>> 3;
      if (i < v.regs.length) {
        v.regs[i] = value;
        v.regsTag[i] = tag;
        return;
      }
    } else if (addr >= FP_LO && addr < FP_HI && this.fpStore(addr, value, tag)) return;
    this.stack.set(addr, { value, tag });
  }

  /** The modelled words of the two fpstate buffers: XSTATE_BV, XCOMP_BV/reserved (0), component 19. */
  private fpLoad(addr: bigint): TaggedWord | undefined {
    const guest = addr < HOST_ADDR.userFpstate;
    const off = Number(addr - (guest ? HOST_ADDR.guestFpstate : HOST_ADDR.userFpstate));
    if (off >= 4096) return undefined;
    if (off === 512) return { value: guest ? this.vcpu.fpstate.xstateBv : this.st.userXstateBv, tag: Tag.init };
    if (off === 520 || off === 528) return INIT_WORD;
    if (off >= 960 && off < 1088 && (off & 7) === 0) {
      const i = (off - 960) >>> 3;
      return guest
        ? { value: this.vcpu.fpstate.egpr[i]!, tag: this.vcpu.fpstate.egprTag[i]! }
        : { value: this.st.userFpEgpr[i]!, tag: this.st.userFpEgprTag[i]! };
    }
    return undefined;
  }
  private fpStore(addr: bigint, value: bigint, tag: ProvenanceTag): boolean {
    const guest = addr < HOST_ADDR.userFpstate;
    const off = Number(addr - (guest ? HOST_ADDR.guestFpstate : HOST_ADDR.userFpstate));
    if (off >= 4096) return false;
    if (off === 512) {
      if (guest) this.vcpu.fpstate.xstateBv = value;
      else this.st.userXstateBv = value;
      return true;
    }
    if (off === 520 || off === 528) return true;
    if (off >= 960 && off < 1088 && (off & 7) === 0) {
      const i = (off - 960) >>> 3;
      const arr = guest ? this.vcpu.fpstate.egpr : this.st.userFpEgpr;
      const tags = guest ? this.vcpu.fpstate.egprTag : this.st.userFpEgprTag;
      arr[i] = value;
      tags[i] = tag;
      return true;
    }
    return false;
  }

  // ---- execution ------------------------------------------------------------------------------

  hostExec(insn: Instruction, mem?: HostMemory): boolean {
    const env: ExecEnv = mem
      ? { ...this.hostEnv, load: (a) => mem.read(a), store: (a, v, t) => mem.write(a, v, t) }
      : this.hostEnv;
    const savedCpl = this.cpu.cpl;
    this.cpu.cpl = 0;
    const out = execute(this.cpu, insn, env);
    this.cpu.cpl = savedCpl;
    if (out.kind === "fault") {
      const text = `host #${out.vector} on \`${formatInstruction(insn)}\`: ${out.reason}`;
      if (out.vector === "UD") this.violate("no-host-ud", text);
      else this.note(text);
      return false;
    }
    if (out.kind === "exit") this.note(`unexpected exit from host instruction ${insn.op}`);
    return true;
  }

  guestExec(insn: Instruction): ExecOutcome {
    return execute(this.cpu, insn, this.guestEnv);
  }

  /** Moves a value into a host GPR as host code does (`mov reg, imm64`), through the executor. */
  hostMovImm(reg: number, value: bigint): void {
    this.hostExec({ op: "mov-r64-imm64", dst: reg, imm: value });
  }

  // ---- recording -----------------------------------------------------------------------------

  warn(message: string): void {
    this.st.warnings++;
    this.note(`WARN: ${message}`);
  }

  violate(invariant: InvariantName, message: string): void {
    // One report per invariant and site: a broken rule tends to fire on every register at once.
    const k = `${invariant}@${this.currentSite}`;
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
    this.availBefore = this.vcpu.regsAvail;
    this.dirtyBefore = this.vcpu.regsDirty;
  }

  endStep(kind: SiteKind, description: string): void {
    const v = this.vcpu;
    // Monitor: the cache never holds avail=0/dirty=1 (FACTS.md §2 table).
    const bad = v.regsDirty & ~v.regsAvail;
    if (bad !== 0n) this.violate("cache-coherence", `avail=0/dirty=1 for ${maskNames(v.layout, bad).join(", ")}`);
    if (this.trace) {
      const step: TraceStep = {
        site: this.currentSite,
        kind,
        description: this.notes.length ? `${description}; ${this.notes.join("; ")}` : description,
        xcr0: this.cpu.xcr0,
        egprTags: Array.from(this.cpu.gprTag.subarray(16, 32)),
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
      this.note(`hardware loads guest XCR0 0x${v.xcr0.toString(16)}`);
    } else {
      this.cpu.xcr0 = this.cfg.hostXcr0;
      this.cpu.xss = 0n;
      this.note(`hardware restores host XCR0 0x${this.cfg.hostXcr0.toString(16)}`);
    }
  }

  runHostNmi(where: string): void {
    runHostNmiHandler(this, where);
  }
}

/**
 * The host NMI handler (noinstr C): in a -mapxf host its entry must save the interrupted R16–R31
 * (it may interrupt code using them) and that save needs XCR0.APX=1; it restores them on return.
 */
export function runHostNmiHandler(ctx: RunCtx, where: string): void {
  ctx.note(`host NMI handler runs at ${where}`);
  if (!ctx.kernelApx) return;
  if ((ctx.cpu.xcr0 & XFEATURE_MASK.APX) === 0n) {
    ctx.violate("apxf-c-needs-apx", `NMI handler (C, -mapxf host) entered at ${where} with XCR0 0x${ctx.cpu.xcr0.toString(16)}: its R16–R31 save would #UD`);
    return;
  }
  const saved = Array.from({ length: 16 }, (_, i) => ctx.saveGpr(16 + i));
  for (let i = 0; i < 16; i++) ctx.cpu.setGpr(16 + i, 0x4e4d_4900_0000_0000n + BigInt(i), Tag.hostKernel);
  saved.forEach((s, i) => ctx.restoreGpr(16 + i, s));
}

export const tagName = describeTag;
