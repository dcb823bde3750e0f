/**
 * svm_vcpu_run and __svm_vcpu_run (svm.c, vmenter.S) as explicit sites (docs/facts.md#svm-run):
 *
 *   pre-run (C): VMCB.RAX/RSP/RIP ← regs[] unconditionally, CLGI (GIF=0: NMIs held until STGI)
 *   → asm: guest SPEC_CTRL, load GPRs except RAX/RSP from regs[] → [asm-before-vmenter anchor]
 *   → VMRUN (hw: RAX/RSP/RIP/RFLAGS/CPL from the VMCB) → guest → #VMEXIT (hw: saves them back)
 *   → [asm-after-vmexit anchor] → asm: store GPRs to regs[] and zero them, host SPEC_CTRL
 *   → post-run (C): regs[RAX/RSP], rip ← VMCB, regs_dirty = 0
 *   → STGI: a pending NMI (an NMI exit) is taken here, guest XCR0 still live
 *   → avail &= ~PDPTR (svm_cache_reg knows PDPTR only)
 */
import {
  HOST_ADDR, Tag, anchorSite, clearAvailableRegisters, maskWords, regBit, resetDirtyRegisters, val, valLow, vid,
  type GuestExit, type Instruction, type RegLayout, type Site, type VcpuState, type VendorCtx,
} from "@kvmx/core";
import { SVM_EXIT_ID, VMCB_FIELD, encodeSvmExit, numberId, svmExitNameOf } from "./vmcb.js";

const RAX = 0, RSP = 4;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

const S_RAX = VMCB_FIELD["vmcb.save.rax"], S_RAX_TAG = VMCB_FIELD["vmcb.save.rax.tag"];
const S_RSP = VMCB_FIELD["vmcb.save.rsp"], S_RSP_TAG = VMCB_FIELD["vmcb.save.rsp.tag"];
const S_RIP = VMCB_FIELD["vmcb.save.rip"], S_CPL = VMCB_FIELD["vmcb.save.cpl"];
const EXIT_CODE = VMCB_FIELD["vmcb.control.exit_code"];

/** Physical address of the VMCB the asm hands VMRUN in RAX (any page-aligned value; only its tag matters). */
export const VMCB_PA = 0x1_2345_6000n;
const VMCB_PA_ID = vid(VMCB_PA);
/** Host kernel stack pointer while KVM runs (restored by #VMEXIT from the host save area). */
const HOST_RSP_ID = vid(0xffff_c900_0000_7f00n);
const REGS_ID = vid(HOST_ADDR.regs);

/** The GPRs __svm_vcpu_run moves itself: all legacy ones but RAX (VMCB) and RSP (VMCB). */
export const SVM_ASM_GPRS: readonly number[] = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

export function ripOf(v: VcpuState): bigint {
  return v.layout.pre ? v.regs.get(v.layout.RIP) : v.rip;
}
export function setRip(v: VcpuState, value: bigint): void {
  if (v.layout.pre) v.regs.set(v.layout.RIP, value);
  else v.rip = value;
}

/** The asm's moves through the executor, built once: [base register][GPR]. */
const perBase = (f: (base: number, r: number) => Instruction): Instruction[][] =>
  Array.from({ length: 16 }, (_, base) => Array.from({ length: 32 }, (_, r) => f(base, r)));
const LOAD_GPR = perBase((base, r) => ({ op: "mov-r64-m64", dst: r, mem: { base, disp: 8 * r } }));
const STORE_GPR = perBase((base, r) => ({ op: "mov-m64-r64", mem: { base, disp: 8 * r }, src: r }));
const ZERO_GPR: readonly Instruction[] = Array.from({ length: 32 }, (_, r) => ({ op: "mov-r64-imm64", dst: r, imm: 0n }) as const);

/**
 * The asm GPR load/store through the executor, with `base` holding &vcpu->arch.regs (RAX on SVM:
 * it is free, the VMCB carries the guest's). A protected vCPU's GPRs are the VMSA's: KVM touching
 * them is a `confidential` violation (docs/facts.md#sev-es: KVM never loads or stores SEV-ES guest GPRs).
 */
export function asmMoveGprs(ctx: VendorCtx, dir: "load" | "store", regs: readonly number[], base: number): void {
  if (ctx.vcpu.protectedState) {
    ctx.violate("confidential", `KVM ${dir === "load" ? "loads guest GPRs from" : "stores guest GPRs into"} regs[] for a protected vCPU (its GPRs live in the encrypted VMSA)`);
    return;
  }
  const cpu = ctx.cpu;
  cpu.setGprId(base, REGS_ID, Tag.hostKernel);
  const moves = (dir === "load" ? LOAD_GPR : STORE_GPR)[base]!;
  for (let i = 0; i < regs.length; i++) ctx.hostExec(moves[regs[i]!]!);
  if (dir === "store") {
    // Zero the guest values so they cannot be used speculatively (vmenter.S "clear guest registers").
    for (let i = 0; i < regs.length; i++) {
      const r = regs[i]!;
      if (ctx.hostExec(ZERO_GPR[r]!)) cpu.setGprId(r, 0, Tag.init);
    }
  }
  if (ctx.tracing) ctx.note(`${regs.length} GPRs ${dir === "load" ? "regs[] → CPU" : "CPU → regs[], then zeroed"}`);
}

/** VMRUN's hardware part for a plain SVM guest: state from the VMCB save area. */
export function vmrunLoad(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  cpu.setGprId(RAX, v.vendorId(S_RAX), v.vendorId(S_RAX_TAG));
  cpu.setGprId(RSP, v.vendorId(S_RSP), v.vendorId(S_RSP_TAG));
  cpu.rip = val(v.vendorId(S_RIP));
  cpu.cpl = valLow(v.vendorId(S_CPL));
  cpu.cr4Osxsave = v.cr4Osxsave;
  cpu.mode = v.longMode ? "long64" : "compat";
  if (ctx.xfeatureSwitch === "hardware") ctx.hwSwapXfeatures("guest");
}

/** VMCB save.RAX and save.RSP with their tags (value ids). */
function setVmcbRaxRsp(v: VcpuState, rax: number, raxTag: number, rsp: number, rspTag: number): void {
  v.vendorSetId(S_RAX, rax);
  v.vendorSetId(S_RAX_TAG, raxTag);
  v.vendorSetId(S_RSP, rsp);
  v.vendorSetId(S_RSP_TAG, rspTag);
}

/** What the exit site encodes when the guest site recorded no exit. */
export const NO_GUEST_EXIT: GuestExit = { kind: "preemption-timer" };

/** #VMEXIT's hardware part: guest RAX/RSP/RIP/CPL into the VMCB, the exit into the control area, host RSP back. */
export function vmexitSave(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  setVmcbRaxRsp(v, cpu.gprId(RAX), cpu.gprTag(RAX), cpu.gprId(RSP), cpu.gprTag(RSP));
  v.vendorSet(S_RIP, cpu.rip);
  v.vendorSetId(S_CPL, numberId(cpu.cpl));
  encodeSvmExit(v, ctx.guestExit ?? NO_GUEST_EXIT);
  cpu.setGprId(RAX, VMCB_PA_ID, Tag.hostKernel);
  cpu.setGprId(RSP, HOST_RSP_ID, Tag.hostKernel);
  cpu.cpl = 0;
  cpu.cr4Osxsave = true;
  cpu.mode = "long64";
  if (ctx.xfeatureSwitch === "hardware") ctx.hwSwapXfeatures("host");
  if (ctx.tracing) ctx.note(`#VMEXIT ${svmExitNameOf(v.vendorId(EXIT_CODE))}`);
}

/** STGI: GIF=1 — a held NMI (or the one that caused an NMI #VMEXIT) is delivered here. */
export function stgiSite(xcr0Note: string): Site {
  return {
    id: "svm:stgi",
    kind: "c",
    nmiOpen: true,
    description: `STGI: GIF=1 — an NMI held since CLGI (or the one that caused an NMI exit) is taken here; ${xcr0Note}`,
    run: (ctx) => {
      if (ctx.vcpu.vendorId(EXIT_CODE) === SVM_EXIT_ID.NMI) ctx.runHostNmi("svm:stgi");
    },
  };
}
export const STGI_SITE: Site = stgiSite("x86.c has not restored host XCR0 yet (guest XCR0 live)");

/** The lazily loaded registers on SVM: PDPTR only (svm_cache_reg). */
export const svmLazyMask = (v: Pick<VcpuState, "layout">): bigint => regBit(v.layout.PDPTR);

/** svmLazyMask as the bitmap words clearAvailableRegisters takes, per layout (layouts are cached by core). */
const lazyWords = new WeakMap<RegLayout, readonly number[]>();
function svmLazyWords(layout: RegLayout): readonly number[] {
  let w = lazyWords.get(layout);
  if (!w) lazyWords.set(layout, (w = maskWords(svmLazyMask({ layout }))));
  return w;
}

/** kvm_register_clear_available(PDPTR) after every exit (svm and sev-es). */
export function svmClearAvail(ctx: VendorCtx): void {
  clearAvailableRegisters(ctx.vcpu, svmLazyWords(ctx.vcpu.layout));
}

/** svm_vcpu_run before CLGI: VMCB save.RAX/RSP/RIP ← regs[], always (no dirty check). */
function preRun(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const regs = v.regs;
  setVmcbRaxRsp(v, regs.id(RAX), regs.tag(RAX), regs.id(RSP), regs.tag(RSP));
  const rip = ripOf(v);
  v.vendorSet(S_RIP, rip);
  if (ctx.tracing) ctx.note(`VMCB rip ${hex(rip)}, GIF=0`);
}

/** svm_vcpu_run after #VMEXIT: regs[RAX/RSP] and rip from the VMCB (the per-GPR accessors: no dirty bit), then dirty = 0. */
function postRun(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const regs = v.regs;
  regs.setId(RAX, v.vendorId(S_RAX), v.vendorId(S_RAX_TAG));
  regs.setId(RSP, v.vendorId(S_RSP), v.vendorId(S_RSP_TAG));
  setRip(v, val(v.vendorId(S_RIP)));
  resetDirtyRegisters(v);
}

/** The plain-SVM run sequence; GIF=0 from CLGI to STGI, so none of those sites is NMI-open. */
export function svmRunSites(): readonly Site[] {
  return SVM_RUN_SITES;
}

const closed = (s: Site): Site => ({ ...s, nmiOpen: false });
const SVM_RUN_SITES: readonly Site[] = [
  {
    id: "svm:pre-run", kind: "c", nmiOpen: true,
    description: "svm_vcpu_run: VMCB save.RAX/RSP/RIP ← regs[] (always, no dirty check), then CLGI",
    run: preRun,
  },
  closed({
    id: "svm:asm-load-gprs", kind: "asm", nmiOpen: false,
    description: "__svm_vcpu_run: guest SPEC_CTRL (asm), load RCX..R15 except RSP from regs[] (RAX is the VMCB's)",
    run: (ctx) => asmMoveGprs(ctx, "load", SVM_ASM_GPRS, RAX),
  }),
  closed(anchorSite("asm-before-vmenter", "svm:asm-before-vmrun", "asm", "entry asm after the GPR load, guest XCR0 live, just before VMRUN")),
  {
    id: "svm:vmrun", kind: "hw", nmiOpen: false,
    description: "VMRUN: RAX, RSP, RIP, RFLAGS, CRs, CPL from the VMCB save area",
    run: (ctx) => {
      ctx.cpu.setGprId(RAX, VMCB_PA_ID, Tag.hostKernel);
      vmrunLoad(ctx);
    },
  },
  { id: "guest", kind: "guest", nmiOpen: true, description: "the guest runs (an NMI causes #VMEXIT)" },
  { id: "svm:vmexit", kind: "hw", nmiOpen: false, description: "#VMEXIT: RAX, RSP, RIP, CPL into the VMCB save area; host RSP back", run: vmexitSave },
  closed(anchorSite("asm-after-vmexit", "svm:asm-after-vmexit", "asm", "exit asm right after #VMEXIT, before any C code")),
  closed({
    id: "svm:asm-store-gprs", kind: "asm", nmiOpen: false,
    description: "__svm_vcpu_run: store RCX..R15 except RSP into regs[], zero them; host SPEC_CTRL in asm",
    run: (ctx) => asmMoveGprs(ctx, "store", SVM_ASM_GPRS, RAX),
  }),
  closed({
    id: "svm:post-run", kind: "c", nmiOpen: false,
    description: "svm_vcpu_run: regs[RAX], regs[RSP], rip ← VMCB (CR2 too; not modelled); regs_dirty = 0",
    run: postRun,
  }),
  STGI_SITE,
  {
    id: "svm:clear-avail", kind: "c", nmiOpen: true,
    description: "kvm_register_clear_available(PDPTR) — the only register svm_cache_reg loads",
    run: svmClearAvail,
  },
];
