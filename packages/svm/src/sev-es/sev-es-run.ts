/**
 * svm_vcpu_run for an SEV-ES guest and __svm_sev_es_vcpu_run as sites (FACTS.md §4):
 *
 *   pre-run (C): first run only LAUNCH_UPDATE_VMSA; fill the host save area (host XCR0/XSS/PKRU);
 *     sev_es_sync_to_ghcb when a GHCB exchange is pending; CLGI
 *   → asm: guest SPEC_CTRL, NO GPR loads → [asm-before-vmenter]
 *   → VMRUN (hw: all GPRs, RIP, XCR0, XSS, PKRU from the VMSA) → guest (its #VC handler first
 *     finishes a pending exchange: RAX..RDX from the GHCB, RIP past the instruction)
 *   → #VMEXIT (hw: guest state into the VMSA, host XCR0/XSS/PKRU from the host save area; for a
 *     #VC-induced VMGEXIT the guest's handler filled the GHCB first) → [asm-after-vmexit]
 *   → post-run (C): nothing copied back (the VMSA is encrypted), regs_dirty = 0 → STGI → PDPTR
 *
 * KVM's own XCR0/PKRU switching is skipped (xfeatureSwitch "hardware"); KVM never moves guest GPRs.
 */
import {
  GPR_NAMES, Tag, anchorSite, clearAvailableRegisters, resetDirtyRegisters,
  type GuestExit, type Site, type VendorCtx,
} from "@kvmx/core";
import { SVM_EXIT, encodeSvmExit, setVmcbControl, svmExitName, vmcbControl } from "../vmcb.js";
import { stgiSite, svmLazyMask } from "../svm-run.js";
import { GHCB_RETURN_GPRS, clearGhcbValid, ghcb, ghcbGpr, setGhcb, setGhcbGpr, setGhcbXcr0, sevEsSyncToGhcb } from "./ghcb.js";
import { hostSave, setHostSave, setVmsa, setVmsaGpr, sevEsSyncVmsa, vmsa, vmsaGpr } from "./vmsa.js";

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Exits that are "non-automatic": the guest's #VC handler turns them into a VMGEXIT through the GHCB. */
export function isNaeExit(e: GuestExit): boolean {
  return e.kind === "cpuid" || e.kind === "io" || e.kind === "wrmsr" || e.kind === "rdmsr-imm" || e.kind === "wrmsrns-imm";
}

/** How many GPRs the VMSA swaps: R0–R15, and R16–R31 only with hypothetical APX support. */
export type VmsaGprs = 16 | 32;

/**
 * The guest's #VC handler (guest code, just before VMGEXIT): GHCB fields for this exit from the
 * live registers, marked valid — CPUID: RAX, RCX and XCR0 (when CR4.OSXSAVE); OUT: RAX; WRMSR:
 * RAX, RCX, RDX (GHCB spec, Linux's vc_handle_* routines).
 */
function guestFillGhcb(ctx: VendorCtx, e: GuestExit): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  clearGhcbValid(v);
  const put = (r: number) => setGhcbGpr(v, r, cpu.gpr[r]!, cpu.gprTag[r]!);
  let code: number = SVM_EXIT.MSR;
  let len = 0;
  switch (e.kind) {
    case "cpuid":
      put(0);
      put(1);
      if (cpu.cr4Osxsave) setGhcbXcr0(v, cpu.xcr0);
      code = SVM_EXIT.CPUID;
      len = e.length;
      break;
    case "io":
      put(0);
      setGhcb(v, "sw_exit_info_1", BigInt(e.port) << 16n);
      code = SVM_EXIT.IOIO;
      len = e.length;
      break;
    case "wrmsr":
      put(0);
      put(1);
      put(2);
      len = e.length;
      break;
    case "rdmsr-imm":
    case "wrmsrns-imm":
      len = e.length;
      break;
    default:
      return;
  }
  setGhcb(v, "sw_exit_code", BigInt(code));
  setGhcb(v, "insn_len", BigInt(len));
  ctx.note(`guest #VC handler: GHCB ← ${[0, 3, 1, 2, 6].filter((r) => ghcbGpr(v, r).valid).map((r) => GPR_NAMES[r]).join(", ")}${e.kind === "cpuid" && cpu.cr4Osxsave ? ", XCR0" : ""}; VMGEXIT`);
}

/** The guest's #VC handler resuming after VMGEXIT: results from the GHCB, RIP past the instruction. */
function guestCompleteVc(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  if (ghcb(v, "response") === 0n) return;
  setGhcb(v, "response", 0n);
  const cpu = ctx.cpu;
  const copied: string[] = [];
  if (ghcb(v, "sw_exit_code") === BigInt(SVM_EXIT.CPUID)) {
    for (const r of GHCB_RETURN_GPRS) {
      const f = ghcbGpr(v, r);
      if (!f.valid) continue;
      cpu.setGpr(r, f.value, f.tag);
      copied.push(GPR_NAMES[r]!);
    }
  }
  cpu.rip += ghcb(v, "insn_len");
  ctx.note(`guest #VC handler completes: ${copied.length ? `${copied.join(", ")} ← GHCB, ` : ""}RIP past the instruction`);
}

export function sevEsRunSites(nrGprs: VmsaGprs): readonly Site[] {
  const closed = (s: Site): Site => ({ ...s, nmiOpen: false });
  return [
    {
      id: "sev-es:pre-run", kind: "c", nmiOpen: true,
      description: "svm_vcpu_run (SEV-ES): fill the host save area with host XCR0/XSS/PKRU, sync the GHCB, CLGI",
      run: (ctx) => {
        const v = ctx.vcpu;
        if (vmsa(v, "launched") === 0n) {
          sevEsSyncVmsa(v, nrGprs);
          ctx.note("LAUNCH_UPDATE_VMSA: initial state encrypted into the VMSA (KVM's last write)");
        }
        setHostSave(v, "xcr0", ctx.hostXcr0);
        setHostSave(v, "xss", ctx.cpu.xss);
        setHostSave(v, "pkru", BigInt(ctx.cpu.pkru));
        if (ghcb(v, "response") !== 0n) sevEsSyncToGhcb(ctx);
        ctx.note(`host save area: XCR0 ${hex(ctx.hostXcr0)}; GIF=0`);
      },
    },
    closed({
      id: "sev-es:asm-enter", kind: "asm", nmiOpen: false,
      description: "__svm_sev_es_vcpu_run: guest SPEC_CTRL; no guest GPR is loaded (the VMSA holds them)",
    }),
    closed(anchorSite("asm-before-vmenter", "sev-es:asm-before-vmrun", "asm", "entry asm just before VMRUN (SEV-ES: host XCR0 still live)")),
    {
      id: "sev-es:vmrun", kind: "hw", nmiOpen: false,
      description: "VMRUN: host GPRs saved; all guest GPRs, RIP, XCR0, XSS, PKRU loaded from the VMSA",
      run: (ctx) => {
        const v = ctx.vcpu;
        const cpu = ctx.cpu;
        for (let r = 0; r < nrGprs; r++) {
          // Host R16–R31 (hypothetical VMSA layout only) go to the host save area; the legacy GPRs
          // are the entry asm's business (callee-saved ones on the stack), not state to keep.
          if (r >= 16) {
            v.vendor[`hsa.gpr.${r}`] = cpu.gpr[r]!;
            v.vendor[`hsa.gpr.${r}.tag`] = BigInt(cpu.gprTag[r]!);
          }
          const g = vmsaGpr(v, r);
          cpu.setGpr(r, g.value, g.tag);
        }
        cpu.rip = vmsa(v, "rip");
        cpu.xcr0 = vmsa(v, "xcr0");
        cpu.xss = vmsa(v, "xss");
        cpu.pkru = Number(vmsa(v, "pkru"));
        cpu.cpl = 0;
        cpu.cr4Osxsave = v.cr4Osxsave;
        ctx.note(`hardware loads guest XCR0 ${hex(cpu.xcr0)} from the VMSA`);
      },
    },
    {
      id: "guest", kind: "guest", nmiOpen: true,
      description: "the SEV-ES guest runs (an NMI causes #VMEXIT)",
      run: guestCompleteVc,
    },
    {
      id: "sev-es:vmexit", kind: "hw", nmiOpen: false,
      description: "#VMEXIT: guest GPRs, RIP, XCR0, XSS, PKRU into the VMSA; host XCR0/XSS/PKRU from the host save area",
      run: (ctx) => {
        const v = ctx.vcpu;
        const cpu = ctx.cpu;
        const e = ctx.guestExit ?? { kind: "preemption-timer" };
        const nae = isNaeExit(e);
        if (nae) guestFillGhcb(ctx, e);
        for (let r = 0; r < nrGprs; r++) {
          setVmsaGpr(v, r, cpu.gpr[r]!, cpu.gprTag[r]!);
          if (r >= 16) cpu.setGpr(r, v.vendor[`hsa.gpr.${r}`] ?? 0n, Number(v.vendor[`hsa.gpr.${r}.tag`] ?? BigInt(Tag.hostKernel)));
          else cpu.setGpr(r, 0n, Tag.hostKernel); // no guest value survives #VMEXIT in a legacy GPR
        }
        setVmsa(v, "rip", cpu.rip);
        setVmsa(v, "xcr0", cpu.xcr0);
        setVmsa(v, "xss", cpu.xss);
        setVmsa(v, "pkru", BigInt(cpu.pkru));
        cpu.xcr0 = hostSave(v, "xcr0");
        cpu.xss = hostSave(v, "xss");
        cpu.pkru = Number(hostSave(v, "pkru"));
        cpu.cpl = 0;
        cpu.cr4Osxsave = true;
        if (nae) {
          setVmcbControl(v, "exit_code", BigInt(SVM_EXIT.VMGEXIT));
          setVmcbControl(v, "insn_len", 0n);
        } else {
          encodeSvmExit(v, e);
        }
        ctx.note(`#VMEXIT ${svmExitName(vmcbControl(v, "exit_code"))}; hardware restores host XCR0 ${hex(cpu.xcr0)}`);
      },
    },
    closed(anchorSite("asm-after-vmexit", "sev-es:asm-after-vmexit", "asm", "exit asm right after #VMEXIT (SEV-ES: host XCR0 already back)")),
    closed({
      id: "sev-es:post-run", kind: "c", nmiOpen: false,
      description: "svm_vcpu_run (SEV-ES): no RAX/RSP/RIP copy-back (the VMSA is encrypted); regs_dirty = 0",
      run: (ctx) => resetDirtyRegisters(ctx.vcpu),
    }),
    stgiSite("#VMEXIT already restored host XCR0 from the host save area"),
    {
      id: "sev-es:clear-avail", kind: "c", nmiOpen: true,
      description: "kvm_register_clear_available(PDPTR)",
      run: (ctx) => clearAvailableRegisters(ctx.vcpu, svmLazyMask(ctx.vcpu)),
    },
  ];
}
