/**
 * svm_vcpu_run and __svm_vcpu_run (svm.c, vmenter.S) as explicit sites (FACTS.md §4):
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
  HOST_ADDR, Tag, anchorSite, clearAvailableRegisters, gprWrite, regBit, resetDirtyRegisters,
  type Site, type VcpuState, type VendorCtx,
} from "@kvmx/core";
import { SVM_EXIT, encodeSvmExit, setVmcbSave, svmExitName, vmcbControl, vmcbSave, vmcbSaveTag } from "./vmcb.js";

const RAX = 0, RSP = 4;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Physical address of the VMCB the asm hands VMRUN in RAX (any page-aligned value; only its tag matters). */
export const VMCB_PA = 0x1_2345_6000n;
/** Host kernel stack pointer while KVM runs (restored by #VMEXIT from the host save area). */
const HOST_RSP = 0xffff_c900_0000_7f00n;

/** The GPRs __svm_vcpu_run moves itself: all legacy ones but RAX (VMCB) and RSP (VMCB). */
export const SVM_ASM_GPRS: readonly number[] = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

export function ripOf(v: VcpuState): bigint {
  return v.layout.pre ? (v.regs[v.layout.RIP] ?? 0n) : v.rip;
}
export function setRip(v: VcpuState, value: bigint): void {
  if (v.layout.pre) v.regs[v.layout.RIP] = BigInt.asUintN(64, value);
  else v.rip = BigInt.asUintN(64, value);
}

/**
 * The asm GPR load/store through the executor, with `base` holding &vcpu->arch.regs (RAX on SVM:
 * it is free, the VMCB carries the guest's). A protected vCPU's GPRs are the VMSA's: KVM touching
 * them is a `confidential` violation (FACTS.md §4: KVM never loads or stores SEV-ES guest GPRs).
 */
export function asmMoveGprs(ctx: VendorCtx, dir: "load" | "store", regs: readonly number[], base: number): void {
  if (ctx.vcpu.protectedState) {
    ctx.violate("confidential", `KVM ${dir === "load" ? "loads guest GPRs from" : "stores guest GPRs into"} regs[] for a protected vCPU (its GPRs live in the encrypted VMSA)`);
    return;
  }
  ctx.cpu.setGpr(base, HOST_ADDR.regs, Tag.hostKernel);
  for (const r of regs) {
    const mem = { base, disp: 8 * r };
    if (dir === "load") ctx.hostExec({ op: "mov-r64-m64", dst: r, mem });
    else ctx.hostExec({ op: "mov-m64-r64", mem, src: r });
  }
  if (dir === "store") {
    // Zero the guest values so they cannot be used speculatively (vmenter.S "clear guest registers").
    for (const r of regs) if (ctx.hostExec({ op: "mov-r64-imm64", dst: r, imm: 0n })) ctx.cpu.setGpr(r, 0n, Tag.init);
  }
  ctx.note(`${regs.length} GPRs ${dir === "load" ? "regs[] → CPU" : "CPU → regs[], then zeroed"}`);
}

/** VMRUN's hardware part for a plain SVM guest: state from the VMCB save area. */
export function vmrunLoad(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  cpu.setGpr(RAX, vmcbSave(v, "rax"), vmcbSaveTag(v, "rax"));
  cpu.setGpr(RSP, vmcbSave(v, "rsp"), vmcbSaveTag(v, "rsp"));
  cpu.rip = vmcbSave(v, "rip");
  cpu.cpl = Number(vmcbSave(v, "cpl"));
  cpu.cr4Osxsave = v.cr4Osxsave;
  cpu.mode = v.longMode ? "long64" : "compat";
  if (ctx.xfeatureSwitch === "hardware") ctx.hwSwapXfeatures("guest");
}

/** #VMEXIT's hardware part: guest RAX/RSP/RIP/CPL into the VMCB, the exit into the control area, host RSP back. */
export function vmexitSave(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  setVmcbSave(v, "rax", cpu.gpr[RAX]!, cpu.gprTag[RAX]!);
  setVmcbSave(v, "rsp", cpu.gpr[RSP]!, cpu.gprTag[RSP]!);
  setVmcbSave(v, "rip", cpu.rip);
  setVmcbSave(v, "cpl", BigInt(cpu.cpl));
  encodeSvmExit(v, ctx.guestExit ?? { kind: "preemption-timer" });
  cpu.setGpr(RAX, VMCB_PA, Tag.hostKernel);
  cpu.setGpr(RSP, HOST_RSP, Tag.hostKernel);
  cpu.cpl = 0;
  cpu.cr4Osxsave = true;
  cpu.mode = "long64";
  if (ctx.xfeatureSwitch === "hardware") ctx.hwSwapXfeatures("host");
  ctx.note(`#VMEXIT ${svmExitName(vmcbControl(v, "exit_code"))}`);
}

/** STGI: GIF=1 — a held NMI (or the one that caused an NMI #VMEXIT) is delivered here. */
export function stgiSite(xcr0Note: string): Site {
  return {
    id: "svm:stgi",
    kind: "c",
    nmiOpen: true,
    description: `STGI: GIF=1 — an NMI held since CLGI (or the one that caused an NMI exit) is taken here; ${xcr0Note}`,
    run: (ctx) => {
      if (vmcbControl(ctx.vcpu, "exit_code") === BigInt(SVM_EXIT.NMI)) ctx.runHostNmi("svm:stgi");
    },
  };
}
export const STGI_SITE: Site = stgiSite("x86.c has not restored host XCR0 yet (guest XCR0 live)");

/** The lazily loaded registers on SVM: PDPTR only (svm_cache_reg). */
export const svmLazyMask = (v: Pick<VcpuState, "layout">): bigint => regBit(v.layout.PDPTR);

/** The plain-SVM run sequence; GIF=0 from CLGI to STGI, so none of those sites is NMI-open. */
export function svmRunSites(): readonly Site[] {
  const closed = (s: Site): Site => ({ ...s, nmiOpen: false });
  return [
    {
      id: "svm:pre-run", kind: "c", nmiOpen: true,
      description: "svm_vcpu_run: VMCB save.RAX/RSP/RIP ← regs[] (always, no dirty check), then CLGI",
      run: (ctx) => {
        const v = ctx.vcpu;
        setVmcbSave(v, "rax", v.regs[RAX]!, v.regsTag[RAX]!);
        setVmcbSave(v, "rsp", v.regs[RSP]!, v.regsTag[RSP]!);
        setVmcbSave(v, "rip", ripOf(v));
        ctx.note(`VMCB rip ${hex(ripOf(v))}, GIF=0`);
      },
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
        ctx.cpu.setGpr(RAX, VMCB_PA, Tag.hostKernel);
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
      run: (ctx) => {
        const v = ctx.vcpu;
        gprWrite(v, RAX, vmcbSave(v, "rax"), vmcbSaveTag(v, "rax"));
        gprWrite(v, RSP, vmcbSave(v, "rsp"), vmcbSaveTag(v, "rsp"));
        setRip(v, vmcbSave(v, "rip"));
        resetDirtyRegisters(v);
      },
    }),
    STGI_SITE,
    {
      id: "svm:clear-avail", kind: "c", nmiOpen: true,
      description: "kvm_register_clear_available(PDPTR) — the only register svm_cache_reg loads",
      run: (ctx) => clearAvailableRegisters(ctx.vcpu, svmLazyMask(ctx.vcpu)),
    },
  ];
}
