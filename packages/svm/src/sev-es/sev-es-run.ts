/**
 * svm_vcpu_run for an SEV-ES guest and __svm_sev_es_vcpu_run as sites (docs/facts.md#sev-es):
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
  GPR_NAMES, Tag, anchorSite, resetDirtyRegisters, val, valLow,
  type GuestExit, type Site, type VendorCtx,
} from "@kvmx/core";
import { SVM_EXIT_ID, VMCB_FIELD, encodeSvmExit, numberId, svmExitNameOf } from "../vmcb.js";
import { NO_GUEST_EXIT, stgiSite, svmClearAvail } from "../svm-run.js";
import {
  GHCB_GPRS, GHCB_RETURN_GPRS, clearGhcbValid, ghcbGprToCpu, ghcbGprValid, ghcbId, setGhcbGprId, setGhcbId, setGhcbXcr0Id,
  sevEsSyncToGhcb,
} from "./ghcb.js";
import { HSA_GPR, VMSA_FIELD, VMSA_GPR, sevEsSyncVmsa, vmsaLaunched } from "./vmsa.js";

const hex = (v: bigint): string => `0x${v.toString(16)}`;

const EXIT_CODE = VMCB_FIELD["vmcb.control.exit_code"];
const INSN_LEN = VMCB_FIELD["vmcb.control.insn_len"];
const VMSA_RIP = VMSA_FIELD["vmsa.rip"], VMSA_XCR0 = VMSA_FIELD["vmsa.xcr0"];
const VMSA_XSS = VMSA_FIELD["vmsa.xss"], VMSA_PKRU = VMSA_FIELD["vmsa.pkru"];
const HSA_XCR0 = VMSA_FIELD["hsa.xcr0"], HSA_XSS = VMSA_FIELD["hsa.xss"], HSA_PKRU = VMSA_FIELD["hsa.pkru"];

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
  let code = SVM_EXIT_ID.MSR;
  let len = 0;
  switch (e.kind) {
    case "cpuid":
      setGhcbGprId(v, 0, cpu.gprId(0), cpu.gprTag(0));
      setGhcbGprId(v, 1, cpu.gprId(1), cpu.gprTag(1));
      if (cpu.cr4Osxsave) setGhcbXcr0Id(v, cpu.xcr0Id);
      code = SVM_EXIT_ID.CPUID;
      len = e.length;
      break;
    case "io":
      setGhcbGprId(v, 0, cpu.gprId(0), cpu.gprTag(0));
      setGhcbId(v, "sw_exit_info_1", numberId(e.port * 0x1_0000));
      code = SVM_EXIT_ID.IOIO;
      len = e.length;
      break;
    case "wrmsr":
      setGhcbGprId(v, 0, cpu.gprId(0), cpu.gprTag(0));
      setGhcbGprId(v, 1, cpu.gprId(1), cpu.gprTag(1));
      setGhcbGprId(v, 2, cpu.gprId(2), cpu.gprTag(2));
      len = e.length;
      break;
    case "rdmsr-imm":
    case "wrmsrns-imm":
      len = e.length;
      break;
    default:
      return;
  }
  setGhcbId(v, "sw_exit_code", code);
  setGhcbId(v, "insn_len", numberId(len));
  if (!ctx.tracing) return;
  let names = "";
  for (const r of GHCB_GPRS) if (ghcbGprValid(v, r)) names += `${names ? ", " : ""}${GPR_NAMES[r]!}`;
  ctx.note(`guest #VC handler: GHCB ← ${names}${e.kind === "cpuid" && cpu.cr4Osxsave ? ", XCR0" : ""}; VMGEXIT`);
}

/** The guest's #VC handler resuming after VMGEXIT: results from the GHCB, RIP past the instruction. */
function guestCompleteVc(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  if (ghcbId(v, "response") === 0) return;
  setGhcbId(v, "response", 0);
  const cpu = ctx.cpu;
  let copied = "";
  if (ghcbId(v, "sw_exit_code") === SVM_EXIT_ID.CPUID) {
    for (const r of GHCB_RETURN_GPRS) {
      if (!ghcbGprValid(v, r)) continue;
      ghcbGprToCpu(v, r, cpu);
      if (ctx.tracing) copied += `${copied ? ", " : ""}${GPR_NAMES[r]!}`;
    }
  }
  cpu.rip += val(ghcbId(v, "insn_len"));
  if (ctx.tracing) ctx.note(`guest #VC handler completes: ${copied ? `${copied} ← GHCB, ` : ""}RIP past the instruction`);
}

export function sevEsRunSites(nrGprs: VmsaGprs): readonly Site[] {
  const closed = (s: Site): Site => ({ ...s, nmiOpen: false });
  return [
    {
      id: "sev-es:pre-run", kind: "c", nmiOpen: true,
      description: "svm_vcpu_run (SEV-ES): fill the host save area with host XCR0/XSS/PKRU, sync the GHCB, CLGI",
      run: (ctx) => {
        const v = ctx.vcpu;
        if (!vmsaLaunched(v)) {
          sevEsSyncVmsa(v, nrGprs);
          ctx.note("LAUNCH_UPDATE_VMSA: initial state encrypted into the VMSA (KVM's last write)");
        }
        v.vendorSet(HSA_XCR0, ctx.hostXcr0);
        v.vendorSet(HSA_XSS, ctx.cpu.xss);
        v.vendorSetId(HSA_PKRU, numberId(ctx.cpu.pkru));
        if (ghcbId(v, "response") !== 0) sevEsSyncToGhcb(ctx);
        if (ctx.tracing) ctx.note(`host save area: XCR0 ${hex(ctx.hostXcr0)}; GIF=0`);
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
            v.vendorSetId(HSA_GPR.value[r]!, cpu.gprId(r));
            v.vendorSetId(HSA_GPR.tag[r]!, cpu.gprTag(r));
          }
          cpu.setGprId(r, v.vendorId(VMSA_GPR.value[r]!), v.vendorId(VMSA_GPR.tag[r]!));
        }
        cpu.rip = val(v.vendorId(VMSA_RIP));
        cpu.xcr0 = val(v.vendorId(VMSA_XCR0));
        cpu.xss = val(v.vendorId(VMSA_XSS));
        cpu.pkru = valLow(v.vendorId(VMSA_PKRU));
        cpu.cpl = 0;
        cpu.cr4Osxsave = v.cr4Osxsave;
        if (ctx.tracing) ctx.note(`hardware loads guest XCR0 ${hex(cpu.xcr0)} from the VMSA`);
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
        const e = ctx.guestExit ?? NO_GUEST_EXIT;
        const nae = isNaeExit(e);
        if (nae) guestFillGhcb(ctx, e);
        for (let r = 0; r < nrGprs; r++) {
          v.vendorSetId(VMSA_GPR.value[r]!, cpu.gprId(r));
          v.vendorSetId(VMSA_GPR.tag[r]!, cpu.gprTag(r));
          // VMRUN of this pass saved the host R16–R31; no guest value survives #VMEXIT in a legacy GPR.
          if (r >= 16) cpu.setGprId(r, v.vendorId(HSA_GPR.value[r]!), v.vendorId(HSA_GPR.tag[r]!));
          else cpu.setGprId(r, 0, Tag.hostKernel);
        }
        v.vendorSet(VMSA_RIP, cpu.rip);
        v.vendorSetId(VMSA_XCR0, cpu.xcr0Id);
        v.vendorSet(VMSA_XSS, cpu.xss);
        v.vendorSetId(VMSA_PKRU, numberId(cpu.pkru));
        cpu.xcr0 = val(v.vendorId(HSA_XCR0));
        cpu.xss = val(v.vendorId(HSA_XSS));
        cpu.pkru = valLow(v.vendorId(HSA_PKRU));
        cpu.cpl = 0;
        cpu.cr4Osxsave = true;
        if (nae) {
          v.vendorSetId(EXIT_CODE, SVM_EXIT_ID.VMGEXIT);
          v.vendorSetId(INSN_LEN, 0);
        } else {
          encodeSvmExit(v, e);
        }
        if (ctx.tracing) ctx.note(`#VMEXIT ${svmExitNameOf(v.vendorId(EXIT_CODE))}; hardware restores host XCR0 ${hex(cpu.xcr0)}`);
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
      run: svmClearAvail,
    },
  ];
}
