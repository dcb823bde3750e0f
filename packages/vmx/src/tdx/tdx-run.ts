/**
 * tdx_vcpu_run and tdx_vcpu_enter_exit (tdx.c; docs/facts.md#tdx-exits) as sites:
 *
 *   vcpu-run (C): first run only TD init (XFAM fixed); nothing written back — RIP/RSP are the module's
 *   → asm: SEAMCALL TDH.VP.ENTER with the TDVMCALL results from regs[] in RCX, RDX, R8..R15
 *   → [asm-before-vmenter] → module enters the TD (TDVPS → CPU, the TD's XCR0/XSS)
 *   → guest (its #VE handler first finishes a pending TDVMCALL) → TD exit (module: CPU → TDVPS,
 *     exit info / TDVMCALL args in host GPRs, XCR0/XSS left derived from XFAM)
 *   → [asm-after-vmexit] → copy-args (noinstr C: RCX, RDX, R8..R15 → regs[])
 *   → handle-nmi (vmx_handle_nmi, XFAM XCR0 still live) → load-host-xsave (tdx_load_host_xsave_state:
 *     host XCR0/XSS/PKRU) → avail &= TDX_REGS_AVAIL_SET
 *
 * KVM never issues XSETBV with the TD's XCR0 and never touches the TDVPS.
 */
import {
  HOST_ADDR, Tag, VALUES, anchorSite, clearAvailableRegisters, compileInstruction, defineVendorFields, maskWords, regBit, resetDirtyRegisters, val, vid,
  type CompiledInstruction, type GuestExit, type RegLayout, type Site, type VendorCtx, type VendorField,
} from "@kvmx/core";
import { EXIT_REASON, INTR_INFO_NMI } from "../exit-reasons.js";
import { VMCS_FIELD } from "../vmcs-fields.js";
import { numId } from "../value-ids.js";
import {
  TDVPS_GPR, TDVPS_GPR_TAG, TD_FIELD, TD_HOST_EGPR, TD_HOST_EGPR_TAG, TD_STATE_FIELDS,
  tdInit, tdInitialised, tdXfam, tdXfamId, xfamAfterExit,
} from "./td-state.js";
import { R, Tdvmcall, hypercallTdvmcall, regName, tdvmcallFor } from "./tdvmcall.js";

const hex = (v: bigint): string => `0x${v.toString(16)}`;
const APX = 1n << 19n;
const APX_LOW_BIT = 1 << 19;
const LOW = VALUES.low;

/** EXIT_REASON_TDCALL: the TD's TDVMCALL (a TDCALL leaf) as TDH.VP.ENTER reports it. */
export const EXIT_REASON_TDCALL = 77;
/** The registers a TD exit exchanges with KVM (RCX, RDX, R8..R15). */
export const TDX_ARG_GPRS: readonly number[] = [R.RCX, R.RDX, R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15];

/**
 * KVM's TDVMCALL bookkeeping between a TD exit and the TD's next entry (possibly in a later event):
 * a TDVMCALL awaits completion by the TD's #VE handler, which result it takes (0 none, 1 CPUID's
 * R12..R15, 2 R11 into `vmcall_result_reg`, 3 a hypercall's R10 into RAX) and the instruction length it
 * skips; and a tdx:hypercall event's number, pending until the TD exit of the same KVM_RUN (0 = none).
 */
export const TD_VMCALL_FIELD = defineVendorFields({
  "td.vmcall_pending": "control",
  "td.vmcall_kind": "control",
  "td.vmcall_len": "control",
  "td.vmcall_result_reg": "control",
  "td.pending_hypercall": "control",
});
const VF = TD_VMCALL_FIELD;

/** Every vendor field the TDX backend's vCPUs have: VMX's VMCS fields (the exit reason), the TD's state, the TDVMCALL bookkeeping. */
export const TDX_STATE_FIELDS: readonly VendorField[] = [...TD_STATE_FIELDS, ...Object.values(TD_VMCALL_FIELD)];

/** TDX_REGS_AVAIL_SET: RAX, RBX, RCX, RDX, RBP, RSI, RDI, R8–R15, EXIT_INFO_1, EXIT_INFO_2 (no RSP, RIP, CRs, RFLAGS, segments, EGPRs). */
export function tdxRegsAvailSet(l: RegLayout): bigint {
  let m = regBit(l.EXIT_INFO_1) | regBit(l.EXIT_INFO_2);
  for (let r = 0; r < 16; r++) if (r !== R.RSP) m |= regBit(r);
  return m;
}

/** regs_avail words outside TDX_REGS_AVAIL_SET (what `avail &= TDX_REGS_AVAIL_SET` clears), per layout. */
const notAvailWords = new WeakMap<RegLayout, readonly number[]>();
function outsideAvailSet(l: RegLayout): readonly number[] {
  let w = notAvailWords.get(l);
  if (!w) notAvailWords.set(l, (w = maskWords(~tdxRegsAvailSet(l) & 0xffff_ffff_ffffn)));
  return w;
}

const KIND = { none: numId(0), cpuid: numId(1), resultReg: numId(2), hypercall: numId(3) } as const;
const REASON_TDCALL_ID = numId(EXIT_REASON_TDCALL);
const REASON_NMI_ID = numId(EXIT_REASON.EXCEPTION_NMI);
const REASON_INTR_ID = numId(EXIT_REASON.EXTERNAL_INTERRUPT);
const INTR_INFO_NMI_ID = vid(INTR_INFO_NMI);
/** RCX at a TDVMCALL exit: the GPRs the TD exposes to the VMM, R10..R15. */
const EXPOSED_GPRS_ID = vid(0xfc00n);
const REGS_ID = vid(HOST_ADDR.regs);
/** tdx:asm-seamcall's loads of RCX, RDX, R8..R15 from regs[] (base RAX = &regs[0]), built once. */
const SEAMCALL_LOADS: readonly CompiledInstruction[] = TDX_ARG_GPRS.map((r) => compileInstruction({ op: "mov-r64-m64", dst: r, mem: { base: R.RAX, disp: 8 * r } }));
const XSETBV = compileInstruction({ op: "xsetbv" });
const CPUID_RESULTS = [R.RAX, R.RBX, R.RCX, R.RDX].map(regName).join(", ");
const GPR_RESULT: readonly string[] = Array.from({ length: 32 }, (_, r) => regName(r));
const PREEMPTION_TIMER: GuestExit = { kind: "preemption-timer" };
/** The TDVMCALL of the TD exit being handled (reused: one exit at a time). */
const call = new Tdvmcall();
/** Host XCR0 (by value id) split into EAX/EDX ids for tdx_load_host_xsave_state's XSETBV. */
const xsetbvHalves: { eax: number; edx: number }[] = [];

/** The TD's #VE handler, resuming after a TDVMCALL: results into its registers, RIP past the instruction. */
function completeTdvmcall(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  if (v.vendorId(VF["td.vmcall_pending"]) === 0) return;
  v.vendorSetId(VF["td.vmcall_pending"], 0);
  const cpu = ctx.cpu;
  // The module hands the TD what KVM's SEAMCALL put in R10..R15 — loaded from regs[] by
  // tdx:asm-seamcall, which nothing changes between TDH.VP.ENTER and the TD running.
  const regs = v.regs;
  const kind = v.vendorId(VF["td.vmcall_kind"]);
  let done: string | undefined;
  if (kind === KIND.cpuid) {
    // CPUID: R12..R15 → EAX, EBX, ECX, EDX.
    cpu.setGprId(R.RAX, regs.id(R.R12), regs.tag(R.R12));
    cpu.setGprId(R.RBX, regs.id(R.R13), regs.tag(R.R13));
    cpu.setGprId(R.RCX, regs.id(R.R14), regs.tag(R.R14));
    cpu.setGprId(R.RDX, regs.id(R.R15), regs.tag(R.R15));
    done = CPUID_RESULTS;
  } else if (kind === KIND.resultReg) {
    const dst = LOW[v.vendorId(VF["td.vmcall_result_reg"])]!;
    cpu.setGprId(dst, regs.id(R.R11), regs.tag(R.R11));
    done = GPR_RESULT[dst];
  } else if (kind === KIND.hypercall) {
    // tdx_kvm_hypercall returns R10 in RAX: the guest's own write.
    cpu.setGprId(R.RAX, regs.id(R.R10), regs.tag(R.R10));
    ctx.st.expected.setId(R.RAX, regs.id(R.R10));
    done = GPR_RESULT[R.RAX];
  }
  const len = v.vendorId(VF["td.vmcall_len"]);
  if (len !== 0) cpu.rip += val(len);
  if (ctx.tracing) ctx.note(`TD's #VE handler completes the TDVMCALL${done ? `: ${done} ← results` : ""}, RIP past the instruction`);
}

/** TDH.VP.ENTER's TD exit: the module saves the TD, hands KVM the exit in host GPRs and leaves XFAM's XCR0/XSS. */
function tdExit(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  const e = ctx.guestExit ?? PREEMPTION_TIMER;
  const xfamId = tdXfamId(v);
  const nGprs = (LOW[xfamId]! & APX_LOW_BIT) !== 0 ? 32 : 16;
  const hc = v.vendorId(VF["td.pending_hypercall"]);
  // The #VE handler's TDVMCALL registers, read from the TD's registers before anything changes them.
  let isCall = true;
  if (hc !== 0) hypercallTdvmcall(hc, cpu, call);
  else isCall = tdvmcallFor(e, cpu, call);
  v.vendorSetId(VF["td.pending_hypercall"], 0);
  for (let r = 0; r < nGprs; r++) {
    v.vendorSetId(TDVPS_GPR[r]!, cpu.gprId(r));
    v.vendorSetId(TDVPS_GPR_TAG[r]!, cpu.gprTag(r));
  }
  v.vendorSetId(TD_FIELD["tdvps.rip"], cpu.ripId);
  v.vendorSetId(TD_FIELD["tdvps.xcr0"], cpu.xcr0Id);
  v.vendorSetId(TD_FIELD["tdvps.xss"], cpu.xssId);
  // Host side after the exit: the exchanged GPRs carry exit info / TDVMCALL args.
  const clearEgprs = ctx.options.tdxModuleHostEgprs === "cleared";
  for (let r = 0; r < nGprs; r++) {
    if (r < 16) cpu.setGprId(r, 0, Tag.hostKernel); // no TD value survives the exit in a legacy GPR
    else if (clearEgprs) cpu.setGprId(r, 0, Tag.init);
    else cpu.setGprId(r, v.vendorId(TD_HOST_EGPR[r]!), LOW[v.vendorId(TD_HOST_EGPR_TAG[r]!)]!);
  }
  // RDX, R8, R9 (and what the call does not pass) stay 0 from the loop above.
  if (isCall) {
    cpu.setGprId(R.RCX, EXPOSED_GPRS_ID, Tag.hostKernel);
    cpu.setGprId(R.R10, call.r10, ctx.guestTag);
    for (let r = R.R11; r <= R.R15; r++) cpu.setGprId(r, call.args[r]!, ctx.guestTag);
  } else if (e.kind === "nmi") {
    cpu.setGprId(R.R9, INTR_INFO_NMI_ID, Tag.hostKernel);
  }
  const after = xfamAfterExit(xfamId);
  cpu.xcr0Id = after.xcr0;
  cpu.xssId = after.xss;
  cpu.cpl = 0;
  cpu.cr4Osxsave = true;
  const reasonId = isCall ? REASON_TDCALL_ID : e.kind === "nmi" ? REASON_NMI_ID : REASON_INTR_ID;
  v.vendorSetId(VMCS_FIELD.VM_EXIT_REASON, reasonId);
  v.vendorSetId(VF["td.vmcall_len"], isCall ? numId(call.length) : 0);
  const kind = hc !== 0 ? KIND.hypercall : e.kind === "cpuid" ? KIND.cpuid : isCall && call.resultReg >= 0 ? KIND.resultReg : KIND.none;
  v.vendorSetId(VF["td.vmcall_kind"], kind);
  // Read only when vmcall_kind says "result register", which this exit sets together with it: 0
  // otherwise, so a stale register number never tells two states apart.
  v.vendorSetId(VF["td.vmcall_result_reg"], kind === KIND.resultReg ? numId(call.resultReg) : 0);
  if (ctx.tracing) ctx.note(
    `${isCall ? `TDVMCALL ${call.r10 !== 0 ? `hypercall ${val(call.r10)}` : `leaf ${val(call.args[R.R11]!)}`}` : `exit reason ${val(reasonId)}`}; XCR0 left at ${hex(cpu.xcr0)} (from XFAM)`,
  );
}

export function tdxRunSites(): readonly Site[] {
  return [
    {
      id: "tdx:vcpu-run", kind: "c", nmiOpen: true,
      description: "tdx_vcpu_run: no RSP/RIP write-back (the TD's registers are the module's); regs_dirty = 0",
      run: (ctx) => {
        const v = ctx.vcpu;
        if (!tdInitialised(v)) {
          tdInit(v);
          if (ctx.tracing) ctx.note(`TD init: XFAM ${hex(tdXfam(v))} (APX ${tdXfam(v) & APX ? "allowed" : "not allowed"} in the TD), TDVPS initialised`);
        }
        resetDirtyRegisters(v);
      },
    },
    {
      id: "tdx:asm-seamcall", kind: "asm", nmiOpen: true,
      description: "SEAMCALL TDH.VP.ENTER: TDVMCALL results from regs[] into RCX, RDX, R8..R15",
      run: (ctx) => {
        ctx.cpu.setGprId(R.RAX, REGS_ID, Tag.hostKernel);
        for (const insn of SEAMCALL_LOADS) ctx.hostRun(insn);
      },
    },
    anchorSite("asm-before-vmenter", "tdx:asm-before-vp-enter", "asm", "asm just before TDH.VP.ENTER (host XCR0 live)"),
    {
      id: "tdx:tdh-vp-enter", kind: "hw", nmiOpen: false,
      description: "TDX module enters the TD: GPRs, RIP, XCR0/XSS from the TDVPS; TDVMCALL results carried to the TD",
      run: (ctx) => {
        const v = ctx.vcpu;
        const cpu = ctx.cpu;
        const egprs = (LOW[tdXfamId(v)]! & APX_LOW_BIT) !== 0;
        for (let r = 0; r < (egprs ? 32 : 16); r++) {
          // SEAMCALL preserves the host's R16–R31 (ASSUMPTIONS.tdxModuleHostEgprs); the legacy GPRs
          // are the asm's business (callee-saved ones on the stack), not state to keep.
          if (r >= 16) {
            v.vendorSetId(TD_HOST_EGPR[r]!, cpu.gprId(r));
            v.vendorSetId(TD_HOST_EGPR_TAG[r]!, numId(cpu.gprTag(r)));
          }
          cpu.setGprId(r, v.vendorId(TDVPS_GPR[r]!), v.vendorId(TDVPS_GPR_TAG[r]!));
        }
        cpu.ripId = v.vendorId(TD_FIELD["tdvps.rip"]);
        cpu.xcr0Id = v.vendorId(TD_FIELD["tdvps.xcr0"]);
        cpu.xssId = v.vendorId(TD_FIELD["tdvps.xss"]);
        cpu.cpl = 0;
        cpu.cr4Osxsave = v.cr4Osxsave;
        if (ctx.tracing) ctx.note(`module loads the TD's XCR0 ${hex(cpu.xcr0)}${egprs ? " and R16–R31" : ""}`);
      },
    },
    { id: "guest", kind: "guest", nmiOpen: true, description: "the TD runs (an NMI causes a TD exit)", run: completeTdvmcall },
    {
      id: "tdx:td-exit", kind: "hw", nmiOpen: false,
      description: "TD exit: module saves the TD into the TDVPS, exit info / TDVMCALL args in host GPRs, XCR0/XSS left from XFAM",
      run: tdExit,
    },
    anchorSite("asm-after-vmexit", "tdx:asm-after-td-exit", "asm", "asm right after TDH.VP.ENTER returns (XFAM XCR0 live)"),
    {
      id: "tdx:copy-args", kind: "c", nmiOpen: true,
      description: "tdx_vcpu_enter_exit (noinstr C): RCX, RDX, R8..R15 from the SEAMCALL into regs[] — KVM's scratch area for a TD",
      run: (ctx) => {
        const regs = ctx.vcpu.regs;
        const cpu = ctx.cpu;
        for (const r of TDX_ARG_GPRS) regs.setId(r, cpu.gprId(r), cpu.gprTag(r));
      },
    },
    {
      id: "tdx:handle-nmi", kind: "c", nmiOpen: true,
      description: "vmx_handle_nmi for a TD: the host NMI handler runs before host XCR0 is restored",
      run: (ctx) => {
        if (ctx.vcpu.vendorId(VMCS_FIELD.VM_EXIT_REASON) === REASON_NMI_ID) ctx.runHostNmi("tdx:handle-nmi");
      },
    },
    {
      id: "tdx:load-host-xsave", kind: "c", nmiOpen: true,
      description: "tdx_load_host_xsave_state: host PKRU, XCR0 (XSETBV if it differs from XFAM's), XSS",
      run: (ctx) => {
        const cpu = ctx.cpu;
        const hostId = vid(ctx.hostXcr0);
        if (cpu.xcr0Id !== hostId) {
          const halves = (xsetbvHalves[hostId] ??= { eax: numId(LOW[hostId]!), edx: numId(VALUES.high[hostId]!) });
          cpu.setGprId(R.RCX, 0, Tag.hostKernel);
          cpu.setGprId(R.RAX, halves.eax, Tag.hostKernel);
          cpu.setGprId(R.RDX, halves.edx, Tag.hostKernel);
          if (ctx.hostRun(XSETBV)) {
            ctx.cost.xsetbv++;
            if (ctx.tracing) ctx.note(`XSETBV host XCR0 ${hex(ctx.hostXcr0)}`);
          }
        } else {
          ctx.note("XCR0 already the host's");
        }
        cpu.xssId = 0;
      },
    },
    {
      id: "tdx:clear-avail", kind: "c", nmiOpen: true,
      description: "regs_avail &= TDX_REGS_AVAIL_SET",
      run: (ctx) => clearAvailableRegisters(ctx.vcpu, outsideAvailSet(ctx.vcpu.layout)),
    },
  ];
}
