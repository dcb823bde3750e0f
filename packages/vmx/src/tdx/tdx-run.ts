/**
 * tdx_vcpu_run and tdx_vcpu_enter_exit (tdx.c; FACTS.md §5) as sites:
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
  HOST_ADDR, Tag, anchorSite, regBit, resetDirtyRegisters,
  type GuestExit, type RegLayout, type Site, type VendorCtx,
} from "@kvmx/core";
import { EXIT_REASON, INTR_INFO_NMI } from "../exit-reasons.js";
import { vmcsRead, vmcsWrite } from "../vmcs-fields.js";
import { setTdvps, setTdvpsGpr, tdInit, tdInitialised, tdXfam, tdvps, tdvpsGpr, xfamXcr0, xfamXss } from "./td-state.js";
import { R, hypercallTdvmcall, regName, tdvmcallFor, type Tdvmcall } from "./tdvmcall.js";

const hex = (v: bigint): string => `0x${v.toString(16)}`;
const APX = 1n << 19n;

/** EXIT_REASON_TDCALL: the TD's TDVMCALL (a TDCALL leaf) as TDH.VP.ENTER reports it. */
export const EXIT_REASON_TDCALL = 77;
/** The registers a TD exit exchanges with KVM (RCX, RDX, R8..R15). */
export const TDX_ARG_GPRS: readonly number[] = [R.RCX, R.RDX, R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15];

/** TDX_REGS_AVAIL_SET: RAX, RBX, RCX, RDX, RBP, RSI, RDI, R8–R15, EXIT_INFO_1, EXIT_INFO_2 (no RSP, RIP, CRs, RFLAGS, segments, EGPRs). */
export function tdxRegsAvailSet(l: RegLayout): bigint {
  let m = regBit(l.EXIT_INFO_1) | regBit(l.EXIT_INFO_2);
  for (let r = 0; r < 16; r++) if (r !== R.RSP) m |= regBit(r);
  return m;
}

const pendingHypercall = (ctx: VendorCtx): bigint | undefined => ctx.vcpu.vendor["td.pending_hypercall"];

/** The TD's #VE handler, resuming after a TDVMCALL: results into its registers, RIP past the instruction. */
function completeTdvmcall(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  if ((v.vendor["td.vmcall_pending"] ?? 0n) === 0n) return;
  v.vendor["td.vmcall_pending"] = 0n;
  const cpu = ctx.cpu;
  // The module hands the TD what KVM's SEAMCALL put in R10..R15 — loaded from regs[] by
  // tdx:asm-seamcall, which nothing changes between TDH.VP.ENTER and the TD running.
  const ret = (r: number) => ({ value: v.regs[r] ?? 0n, tag: v.regsTag[r] ?? Tag.init });
  const kind = v.vendor["td.vmcall_kind"] ?? 0n;
  const done: string[] = [];
  if (kind === 1n) {
    // CPUID: R12..R15 → EAX, EBX, ECX, EDX.
    [R.RAX, R.RBX, R.RCX, R.RDX].forEach((dst, i) => {
      const x = ret(R.R12 + i);
      cpu.setGpr(dst, x.value, x.tag);
      done.push(regName(dst));
    });
  } else if (kind === 2n) {
    const dst = Number(v.vendor["td.vmcall_result_reg"] ?? 0n);
    const x = ret(R.R11);
    cpu.setGpr(dst, x.value, x.tag);
    done.push(regName(dst));
  } else if (kind === 3n) {
    // tdx_kvm_hypercall returns R10 in RAX: the guest's own write.
    const x = ret(R.R10);
    cpu.setGpr(R.RAX, x.value, x.tag);
    ctx.st.expected[R.RAX] = x.value;
    done.push("rax");
  }
  cpu.rip += v.vendor["td.vmcall_len"] ?? 0n;
  ctx.note(`TD's #VE handler completes the TDVMCALL${done.length ? `: ${done.join(", ")} ← results` : ""}, RIP past the instruction`);
}

/** What the module hands KVM in host GPRs at a TD exit. */
function exitArgs(e: GuestExit, call: Tdvmcall | undefined): Map<number, bigint> {
  const m = new Map<number, bigint>(TDX_ARG_GPRS.map((r) => [r, 0n]));
  if (call) {
    m.set(R.RCX, 0xfc00n); // the GPRs the TD exposes to the VMM: R10..R15
    m.set(R.R10, call.r10);
    for (const [k, val] of Object.entries(call.args)) m.set(Number(k), val);
  } else if (e.kind === "nmi") {
    m.set(R.R9, INTR_INFO_NMI);
  }
  return m;
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
          ctx.note(`TD init: XFAM ${hex(tdXfam(v))} (APX ${tdXfam(v) & APX ? "allowed" : "not allowed"} in the TD), TDVPS initialised`);
        }
        resetDirtyRegisters(v);
      },
    },
    {
      id: "tdx:asm-seamcall", kind: "asm", nmiOpen: true,
      description: "SEAMCALL TDH.VP.ENTER: TDVMCALL results from regs[] into RCX, RDX, R8..R15",
      run: (ctx) => {
        ctx.cpu.setGpr(R.RAX, HOST_ADDR.regs, Tag.hostKernel);
        for (const r of TDX_ARG_GPRS) ctx.hostExec({ op: "mov-r64-m64", dst: r, mem: { base: R.RAX, disp: 8 * r } });
      },
    },
    anchorSite("asm-before-vmenter", "tdx:asm-before-vp-enter", "asm", "asm just before TDH.VP.ENTER (host XCR0 live)"),
    {
      id: "tdx:tdh-vp-enter", kind: "hw", nmiOpen: false,
      description: "TDX module enters the TD: GPRs, RIP, XCR0/XSS from the TDVPS; TDVMCALL results carried to the TD",
      run: (ctx) => {
        const v = ctx.vcpu;
        const cpu = ctx.cpu;
        const egprs = (tdXfam(v) & APX) !== 0n;
        for (let r = 0; r < (egprs ? 32 : 16); r++) {
          // SEAMCALL preserves the host's R16–R31 (ASSUMPTIONS.tdxModuleHostEgprs); the legacy GPRs
          // are the asm's business (callee-saved ones on the stack), not state to keep.
          if (r >= 16) {
            v.vendor[`td.host.${r}`] = cpu.gpr[r]!;
            v.vendor[`td.host.${r}.tag`] = BigInt(cpu.gprTag[r]!);
          }
          const g = tdvpsGpr(v, r);
          cpu.setGpr(r, g.value, g.tag);
        }
        cpu.rip = tdvps(v, "rip");
        cpu.xcr0 = tdvps(v, "xcr0");
        cpu.xss = tdvps(v, "xss");
        cpu.cpl = 0;
        cpu.cr4Osxsave = v.cr4Osxsave;
        ctx.note(`module loads the TD's XCR0 ${hex(cpu.xcr0)}${egprs ? " and R16–R31" : ""}`);
      },
    },
    { id: "guest", kind: "guest", nmiOpen: true, description: "the TD runs (an NMI causes a TD exit)", run: completeTdvmcall },
    {
      id: "tdx:td-exit", kind: "hw", nmiOpen: false,
      description: "TD exit: module saves the TD into the TDVPS, exit info / TDVMCALL args in host GPRs, XCR0/XSS left from XFAM",
      run: (ctx) => {
        const v = ctx.vcpu;
        const cpu = ctx.cpu;
        const e = ctx.guestExit ?? { kind: "preemption-timer" };
        const xfam = tdXfam(v);
        const egprs = (xfam & APX) !== 0n;
        const hc = pendingHypercall(ctx);
        const call = hc !== undefined ? hypercallTdvmcall(hc, cpu.gpr) : tdvmcallFor(e, cpu.gpr);
        delete v.vendor["td.pending_hypercall"];
        for (let r = 0; r < (egprs ? 32 : 16); r++) setTdvpsGpr(v, r, cpu.gpr[r]!, cpu.gprTag[r]!);
        setTdvps(v, "rip", cpu.rip);
        setTdvps(v, "xcr0", cpu.xcr0);
        setTdvps(v, "xss", cpu.xss);
        // Host side after the exit: the exchanged GPRs carry exit info / TDVMCALL args.
        for (let r = 0; r < (egprs ? 32 : 16); r++) {
          if (r < 16) cpu.setGpr(r, 0n, Tag.hostKernel); // no TD value survives the exit in a legacy GPR
          else if (ctx.options.tdxModuleHostEgprs === "cleared") cpu.setGpr(r, 0n, Tag.init);
          else cpu.setGpr(r, v.vendor[`td.host.${r}`] ?? 0n, Number(v.vendor[`td.host.${r}.tag`] ?? BigInt(Tag.hostKernel)));
        }
        for (const [r, val] of exitArgs(e, call)) cpu.setGpr(r, val, r >= R.R10 && call ? ctx.guestTag : Tag.hostKernel);
        cpu.xcr0 = xfamXcr0(xfam);
        cpu.xss = xfamXss(xfam);
        cpu.cpl = 0;
        cpu.cr4Osxsave = true;
        const reason = call ? EXIT_REASON_TDCALL : e.kind === "nmi" ? EXIT_REASON.EXCEPTION_NMI : EXIT_REASON.EXTERNAL_INTERRUPT;
        vmcsWrite(v, "VM_EXIT_REASON", BigInt(reason));
        v.vendor["td.vmcall_len"] = BigInt(call?.length ?? 0);
        v.vendor["td.vmcall_kind"] = hc !== undefined ? 3n : e.kind === "cpuid" ? 1n : call?.resultReg !== undefined ? 2n : 0n;
        if (call?.resultReg !== undefined) v.vendor["td.vmcall_result_reg"] = BigInt(call.resultReg);
        ctx.note(`${call ? `TDVMCALL ${call.r10 !== 0n ? `hypercall ${call.r10}` : `leaf ${call.args[11]}`}` : `exit reason ${reason}`}; XCR0 left at ${hex(cpu.xcr0)} (from XFAM)`);
      },
    },
    anchorSite("asm-after-vmexit", "tdx:asm-after-td-exit", "asm", "asm right after TDH.VP.ENTER returns (XFAM XCR0 live)"),
    {
      id: "tdx:copy-args", kind: "c", nmiOpen: true,
      description: "tdx_vcpu_enter_exit (noinstr C): RCX, RDX, R8..R15 from the SEAMCALL into regs[] — KVM's scratch area for a TD",
      run: (ctx) => {
        const v = ctx.vcpu;
        for (const r of TDX_ARG_GPRS) {
          v.regs[r] = ctx.cpu.gpr[r]!;
          v.regsTag[r] = ctx.cpu.gprTag[r]!;
        }
      },
    },
    {
      id: "tdx:handle-nmi", kind: "c", nmiOpen: true,
      description: "vmx_handle_nmi for a TD: the host NMI handler runs before host XCR0 is restored",
      run: (ctx) => {
        if (vmcsRead(ctx.vcpu, "VM_EXIT_REASON") === BigInt(EXIT_REASON.EXCEPTION_NMI)) ctx.runHostNmi("tdx:handle-nmi");
      },
    },
    {
      id: "tdx:load-host-xsave", kind: "c", nmiOpen: true,
      description: "tdx_load_host_xsave_state: host PKRU, XCR0 (XSETBV if it differs from XFAM's), XSS",
      run: (ctx) => {
        const cpu = ctx.cpu;
        if (cpu.xcr0 !== ctx.hostXcr0) {
          cpu.setGpr(R.RCX, 0n, Tag.hostKernel);
          cpu.setGpr(R.RAX, ctx.hostXcr0 & 0xffff_ffffn, Tag.hostKernel);
          cpu.setGpr(R.RDX, ctx.hostXcr0 >> 32n, Tag.hostKernel);
          if (ctx.hostExec({ op: "xsetbv" })) {
            ctx.cost.xsetbv++;
            ctx.note(`XSETBV host XCR0 ${hex(ctx.hostXcr0)}`);
          }
        } else {
          ctx.note("XCR0 already the host's");
        }
        cpu.xss = 0n;
      },
    },
    {
      id: "tdx:clear-avail", kind: "c", nmiOpen: true,
      description: "regs_avail &= TDX_REGS_AVAIL_SET",
      run: (ctx) => {
        const v = ctx.vcpu;
        v.regsAvail &= tdxRegsAvailSet(v.layout);
      },
    },
  ];
}
