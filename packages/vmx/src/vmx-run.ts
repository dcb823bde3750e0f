/**
 * vmx_vcpu_run and __vmx_vcpu_run (vmenter.S) as explicit sites (FACTS.md §3; DESIGN.md "The machine
 * model" VMX POST order): write back dirty RSP/RIP, guest SPEC_CTRL and GPR load in asm, VM-entry,
 * the guest, VM-exit, GPR store (+ zeroing) in asm, host SPEC_CTRL (asm POST / C PRE), lazy avail
 * clearing, vmx_handle_nmi. The anchors asm-before-vmenter and asm-after-vmexit are placed here.
 */
import {
  Tag, anchorSite, clearAvailableRegisters, isDirty, resetDirtyRegisters, HOST_ADDR,
  type Site, type VendorCtx, type GuestExit,
} from "@kvmx/core";
import { vmcsRead, vmcsWrite } from "./vmcs-fields.js";
import { EXIT_REASON, INTR_INFO_NMI } from "./exit-reasons.js";
import { encodeExtendedInfo, encodeLegacyInfo, regOnlyInfo } from "./instruction-info.js";
import { vmxLazyLoadSet } from "./vmx-cache-reg.js";

const RAX = 0, RSP = 4;

/** vmx_vcpu_run's pre-entry part: dirty RSP/RIP reach the VMCS, then the whole dirty mask is cleared. */
function writeBack(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const l = v.layout;
  const done: string[] = [];
  if (isDirty(v, RSP)) {
    vmcsWrite(v, "GUEST_RSP", v.regs.get(RSP));
    done.push("RSP");
  }
  if (isDirty(v, l.RIP)) {
    vmcsWrite(v, "GUEST_RIP", l.pre ? v.regs.get(l.RIP) : v.rip);
    done.push("RIP");
  }
  resetDirtyRegisters(v);
  ctx.note(done.length ? `${done.join(", ")} written to the VMCS` : "nothing dirty");
}

/** Guest RAX..R15 (not RSP) from regs[] through the executor, the regs pointer in RAX, RAX last. */
function loadGprs(ctx: VendorCtx): void {
  const c = ctx;
  c.hostExec({ op: "mov-r64-imm64", dst: RAX, imm: HOST_ADDR.regs });
  for (let r = 1; r < 16; r++) if (r !== RSP) c.hostExec({ op: "mov-r64-m64", dst: r, mem: { base: RAX, disp: 8 * r } });
  c.hostExec({ op: "mov-r64-m64", dst: RAX, mem: { base: RAX, disp: 0 } });
}

/** Guest GPRs back to regs[] (guest RAX parked on the stack first), then zeroed so no guest value lingers. */
function storeGprs(ctx: VendorCtx): void {
  const c = ctx;
  c.hostExec({ op: "mov-m64-r64", mem: { base: RSP, disp: -8 }, src: RAX });
  c.hostExec({ op: "mov-r64-imm64", dst: RAX, imm: HOST_ADDR.regs });
  for (let r = 1; r < 16; r++) if (r !== RSP) c.hostExec({ op: "mov-m64-r64", mem: { base: RAX, disp: 8 * r }, src: r });
  c.hostExec({ op: "mov-r64-m64", dst: 1, mem: { base: RSP, disp: -8 } });
  c.hostExec({ op: "mov-m64-r64", mem: { base: RAX, disp: 0 }, src: 1 });
  for (let r = 0; r < 16; r++) if (r !== RSP) c.cpu.setGpr(r, 0n, Tag.init);
}

function vmenter(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  vmcsWrite(v, "HOST_RSP", cpu.gpr(RSP));
  cpu.setGpr(RSP, vmcsRead(v, "GUEST_RSP"), Tag.guest(v.id));
  cpu.rip = vmcsRead(v, "GUEST_RIP");
  cpu.rflags = vmcsRead(v, "GUEST_RFLAGS") | 2n;
  cpu.mode = v.longMode ? "long64" : "protected";
  cpu.cpl = 0;
  cpu.cr4Osxsave = v.cr4Osxsave;
  if (ctx.xfeatureSwitch === "hardware") ctx.hwSwapXfeatures("guest");
}

/** VM-exit: guest RSP/RIP/RFLAGS to the VMCS, exit fields written, host RSP back. */
function vmexit(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  vmcsWrite(v, "GUEST_RSP", cpu.gpr(RSP));
  vmcsWrite(v, "GUEST_RIP", cpu.rip);
  vmcsWrite(v, "GUEST_RFLAGS", cpu.rflags);
  encodeExit(ctx, ctx.guestExit ?? { kind: "preemption-timer" });
  const hostRsp = vmcsRead(v, "HOST_RSP");
  cpu.setGpr(RSP, hostRsp === 0n ? HOST_ADDR.stackTop : hostRsp, Tag.hostKernel);
  cpu.cpl = 0;
  cpu.mode = "long64";
  cpu.cr4Osxsave = true;
  if (ctx.xfeatureSwitch === "hardware") ctx.hwSwapXfeatures("host");
}

/** Writes the exit reason, qualification and instruction information the way VT-x reports them. */
export function encodeExit(ctx: VendorCtx, e: GuestExit): void {
  const v = ctx.vcpu;
  let reason: number;
  let qual = 0n;
  let len = 0;
  let reg: number | undefined;
  let intr = 0n;
  switch (e.kind) {
    case "xsetbv": reason = EXIT_REASON.XSETBV; len = e.length; break;
    case "cpuid": reason = EXIT_REASON.CPUID; len = e.length; break;
    case "hlt": reason = EXIT_REASON.HLT; len = e.length; break;
    case "io":
      reason = EXIT_REASON.IO_INSTRUCTION;
      // size-1 = 0 (byte), direction OUT (bit 3 = 0), immediate operand (bit 6), port in 31:16.
      qual = (1n << 6n) | (BigInt(e.port) << 16n);
      len = e.length;
      break;
    case "rdmsr-imm": reason = EXIT_REASON.MSR_READ_IMM; qual = BigInt(e.msr); reg = e.reg; len = e.length; break;
    case "wrmsrns-imm": reason = EXIT_REASON.MSR_WRITE_IMM; qual = BigInt(e.msr); reg = e.reg; len = e.length; break;
    case "wrmsr": reason = EXIT_REASON.MSR_WRITE; len = e.length; break;
    case "nmi": reason = EXIT_REASON.EXCEPTION_NMI; intr = INTR_INFO_NMI; break;
    case "preemption-timer": reason = EXIT_REASON.PREEMPTION_TIMER; break;
    case "vm-fail": reason = EXIT_REASON.PREEMPTION_TIMER; break;
  }
  vmcsWrite(v, "VM_EXIT_REASON", BigInt(reason));
  vmcsWrite(v, "EXIT_QUALIFICATION", qual);
  vmcsWrite(v, "VM_EXIT_INSTRUCTION_LEN", BigInt(len));
  vmcsWrite(v, "VM_EXIT_INTR_INFO", intr);
  const info = regOnlyInfo(reg ?? 0);
  vmcsWrite(v, "VMX_INSTRUCTION_INFO", encodeLegacyInfo(info));
  // 0x2406 exists (and is written) only when the CPU enumerates APX_F, independent of XCR0.
  vmcsWrite(v, "EXTENDED_INSTRUCTION_INFO", ctx.cpuApx ? encodeExtendedInfo(info) : 0n);
}

function clearLazyAvail(ctx: VendorCtx): void {
  clearAvailableRegisters(ctx.vcpu, vmxLazyLoadSet(ctx.vcpu.layout));
}

/** vmx_handle_nmi: for an NMI exit, the host NMI handler runs now — before host XCR0 is restored. */
function handleNmi(ctx: VendorCtx): void {
  if (vmcsRead(ctx.vcpu, "VM_EXIT_REASON") === BigInt(EXIT_REASON.EXCEPTION_NMI)) ctx.runHostNmi("vmx:handle-nmi");
}

const POST_SITES: readonly Site[] = buildSites(false);
const PRE_SITES: readonly Site[] = buildSites(true);

export function vmxRunSites(opts: { readonly pre: boolean }): readonly Site[] {
  return opts.pre ? PRE_SITES : POST_SITES;
}

function buildSites(pre: boolean): Site[] {
  return [
    { id: "vmx:vcpu-run", kind: "c", nmiOpen: true, description: "vmx_vcpu_run: write dirty RSP/RIP to the VMCS, reset dirty", run: writeBack },
    { id: "vmx:asm-spec-ctrl-guest", kind: "asm", nmiOpen: true, description: "__vmx_vcpu_run: guest SPEC_CTRL" },
    { id: "vmx:asm-load-gprs", kind: "asm", nmiOpen: true, description: "__vmx_vcpu_run: load guest RAX..R15 from regs[] (not RSP)", run: loadGprs },
    anchorSite("asm-before-vmenter", "vmx:asm-before-vmenter", "asm", "asm after the GPR load, just before VMLAUNCH/VMRESUME"),
    { id: "vmx:vmenter", kind: "hw", nmiOpen: false, description: "VM-entry: guest RSP/RIP/RFLAGS from the VMCS", run: vmenter },
    { id: "guest", kind: "guest", nmiOpen: true, description: "guest runs (VMX non-root)" },
    { id: "vmx:vmexit", kind: "hw", nmiOpen: false, description: "VM-exit: guest RSP/RIP to the VMCS, exit information written", run: vmexit },
    anchorSite("asm-after-vmexit", "vmx:asm-after-vmexit", "asm", "asm right after VM-exit, before any C"),
    { id: "vmx:asm-store-gprs", kind: "asm", nmiOpen: true, description: "__vmx_vcpu_run: store guest GPRs to regs[], zero them", run: storeGprs },
    pre
      ? { id: "vmx:spec-ctrl-host", kind: "c", nmiOpen: true, description: "PRE: host SPEC_CTRL restored by a C call (vmx_spec_ctrl_restore_host)" }
      : { id: "vmx:asm-spec-ctrl-host", kind: "asm", nmiOpen: true, description: "POST: host SPEC_CTRL restored in asm" },
    { id: "vmx:clear-lazy-avail", kind: "c", nmiOpen: true, description: "avail &= ~VMX_REGS_LAZY_LOAD_SET (after every exit, even VM-Fail)", run: clearLazyAvail },
    { id: "vmx:handle-nmi", kind: "c", nmiOpen: true, description: "vmx_handle_nmi (noinstr C), guest XCR0 still live", run: handleNmi },
  ];
}
