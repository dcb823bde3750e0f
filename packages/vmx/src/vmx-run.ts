/**
 * vmx_vcpu_run and __vmx_vcpu_run (vmenter.S) as explicit sites (docs/facts.md#vmx-run; the VMX POST
 * order of docs/model.md#sites): write back dirty RSP/RIP, guest SPEC_CTRL and GPR load in asm, VM-entry,
 * the guest, VM-exit, GPR store (+ zeroing) in asm, host SPEC_CTRL (asm POST / C PRE), lazy avail
 * clearing, vmx_handle_nmi. The anchors asm-before-vmenter and asm-after-vmexit are placed here.
 */
import {
  FEATURE_BIT, Tag, anchorSite, clearAvailableRegisters, exitPathOnly, compileInstruction, isDirty, maskWords, resetDirtyRegisters, val, valLow, vid, HOST_ADDR,
  type CompiledInstruction, type Site, type VendorCtx, type GuestExit,
} from "@kvmx/core";
import { vmcsRead, vmcsReadId, vmcsWrite, vmcsWriteId } from "./vmcs-fields.js";
import { EXIT_REASON, INTR_INFO_MC, INTR_INFO_NMI } from "./exit-reasons.js";
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
  if (ctx.tracing) ctx.note(done.length ? `${done.join(", ")} written to the VMCS` : "nothing dirty");
}

/**
 * __vmx_vcpu_run's GPR load: guest RAX..R15 (not RSP) from regs[], the regs pointer in RAX, RAX last.
 * Built once as compiled instructions.
 */
const LOAD_GPRS: readonly CompiledInstruction[] = [
  compileInstruction({ op: "mov-r64-imm64", dst: RAX, imm: HOST_ADDR.regs }),
  ...[...Array(16).keys()].filter((r) => r !== RAX && r !== RSP).map((r) => compileInstruction({ op: "mov-r64-m64", dst: r, mem: { base: RAX, disp: 8 * r } })),
  compileInstruction({ op: "mov-r64-m64", dst: RAX, mem: { base: RAX, disp: 0 } }),
];
/** The GPR store after VM-exit: guest RAX parked on the stack, the regs pointer in RAX, RAX stored last. */
const STORE_GPRS: readonly CompiledInstruction[] = [
  compileInstruction({ op: "mov-m64-r64", mem: { base: RSP, disp: -8 }, src: RAX }),
  compileInstruction({ op: "mov-r64-imm64", dst: RAX, imm: HOST_ADDR.regs }),
  ...[...Array(16).keys()].filter((r) => r !== RAX && r !== RSP).map((r) => compileInstruction({ op: "mov-m64-r64", mem: { base: RAX, disp: 8 * r }, src: r })),
  compileInstruction({ op: "mov-r64-m64", dst: 1, mem: { base: RSP, disp: -8 } }),
  compileInstruction({ op: "mov-m64-r64", mem: { base: RAX, disp: 0 }, src: 1 }),
];

function loadGprs(ctx: VendorCtx): void {
  for (const c of LOAD_GPRS) ctx.hostRun(c);
}

/** Guest GPRs back to regs[]. */
function storeGprs(ctx: VendorCtx): void {
  for (const c of STORE_GPRS) ctx.hostRun(c);
}

/** The GPRs zeroed so no guest value lingers in the host (both after VM-exit and VM-Fail). */
function clearGprs(ctx: VendorCtx): void {
  for (let r = 0; r < 16; r++) if (r !== RSP) ctx.cpu.setGprId(r, 0, Tag.init);
}

function vmenter(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  if (ctx.vmFailRequested) {
    // VMLAUNCH/VMRESUME fails (VM-Fail: RFLAGS.CF/ZF): no VM-entry, execution goes on in the host asm.
    ctx.vmFailed = true;
    if (ctx.tracing) ctx.note("VM-Fail: VM-entry rejected, the host asm continues at .Lvmfail");
    return;
  }
  vmcsWriteId(v, "HOST_RSP", cpu.gprId(RSP));
  cpu.setGprId(RSP, vmcsReadId(v, "GUEST_RSP"), Tag.guest(v.id));
  cpu.ripId = vmcsReadId(v, "GUEST_RIP");
  const rflags = vmcsReadId(v, "GUEST_RFLAGS");
  cpu.rflagsId = (valLow(rflags) & 2) !== 0 ? rflags : vid(val(rflags) | 2n);
  cpu.mode = v.longMode ? "long64" : "protected";
  cpu.cpl = 0;
  cpu.cr4Osxsave = v.cr4Osxsave;
  // The guest's CR3 comes from the VMCS (modelled with the cr3 feature: docs/facts.md#cr3-reset).
  if (ctx.features & CR3_FEATURE) cpu.cr3Id = vmcsReadId(v, "GUEST_CR3");
  if (ctx.xfeatureSwitch === "hardware") ctx.hwSwapXfeatures("guest");
}
const CR3_FEATURE = FEATURE_BIT.cr3;

/** VM-exit: guest RSP/RIP/RFLAGS to the VMCS, exit fields written, host RSP back. */
function vmexit(ctx: VendorCtx): void {
  const v = ctx.vcpu;
  const cpu = ctx.cpu;
  vmcsWriteId(v, "GUEST_RSP", cpu.gprId(RSP));
  vmcsWriteId(v, "GUEST_RIP", cpu.ripId);
  vmcsWriteId(v, "GUEST_RFLAGS", cpu.rflagsId);
  if (ctx.features & CR3_FEATURE) vmcsWriteId(v, "GUEST_CR3", cpu.cr3Id);
  encodeExit(ctx, ctx.guestExit ?? PREEMPTION_TIMER);
  const hostRsp = vmcsReadId(v, "HOST_RSP");
  cpu.setGprId(RSP, hostRsp === 0 ? STACK_TOP_ID : hostRsp, Tag.hostKernel);
  cpu.cpl = 0;
  cpu.mode = "long64";
  cpu.cr4Osxsave = true;
  if (ctx.xfeatureSwitch === "hardware") ctx.hwSwapXfeatures("host");
}

const PREEMPTION_TIMER: GuestExit = { kind: "preemption-timer" };
const STACK_TOP_ID = vid(HOST_ADDR.stackTop);

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
    case "mce": reason = EXIT_REASON.EXCEPTION_NMI; intr = INTR_INFO_MC; break;
    case "dr-access":
      // Exit qualification for MOV DR: DR number in 2:0, direction in 4 (1 = MOV from DR), GPR in 11:8 (RAX).
      reason = EXIT_REASON.DR_ACCESS;
      qual = BigInt(e.dr) | (e.write ? 0n : 1n << 4n);
      len = e.length;
      break;
  }
  vmcsWriteId(v, "VM_EXIT_REASON", smallId(reason));
  vmcsWriteId(v, "EXIT_QUALIFICATION", qual === 0n ? 0 : vid(qual));
  vmcsWriteId(v, "VM_EXIT_INSTRUCTION_LEN", smallId(len));
  vmcsWriteId(v, "VM_EXIT_INTR_INFO", intr === 0n ? 0 : vid(intr));
  const r = reg ?? 0;
  vmcsWriteId(v, "VMX_INSTRUCTION_INFO", (LEGACY_INFO_ID[r] ??= vid(encodeLegacyInfo(regOnlyInfo(r)))));
  // 0x2406 exists (and is written) only when the CPU enumerates APX_F, independent of XCR0.
  vmcsWriteId(v, "EXTENDED_INSTRUCTION_INFO", ctx.cpuApx ? (EXTENDED_INFO_ID[r] ??= vid(encodeExtendedInfo(regOnlyInfo(r)))) : 0);
}
/** Value ids of the instruction-information encodings per reg1 (computed once). */
const LEGACY_INFO_ID: number[] = [];
const EXTENDED_INFO_ID: number[] = [];
const SMALL_ID: number[] = [];
/** Id of a small non-negative number (exit reasons, lengths). */
const smallId = (n: number): number => (SMALL_ID[n] ??= vid(BigInt(n)));

const LAZY_WORDS = new WeakMap<object, readonly number[]>();
function clearLazyAvail(ctx: VendorCtx): void {
  const l = ctx.vcpu.layout;
  let w = LAZY_WORDS.get(l);
  if (!w) LAZY_WORDS.set(l, (w = maskWords(vmxLazyLoadSet(l))));
  clearAvailableRegisters(ctx.vcpu, w);
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

/**
 * The sites of one vmx_vcpu_run pass (docs/facts.md#vmx-run). After a VM-Fail, VMLAUNCH/VMRESUME falls
 * through into the exit asm: the guest, the VM-exit and the GPR store are skipped (exitPathOnly), the
 * GPR clearing, RSB fill and host SPEC_CTRL restore run on both paths.
 */
function buildSites(pre: boolean): Site[] {
  const specCtrlHost: Site = pre
    ? { id: "vmx:spec-ctrl-host", kind: "c", nmiOpen: true, description: "PRE: host SPEC_CTRL restored by a C call (vmx_spec_ctrl_restore_host)" }
    : { id: "vmx:asm-spec-ctrl-host", kind: "asm", nmiOpen: true, description: "POST: host SPEC_CTRL restored in asm" };
  const asmExit = anchorSite("asm-exit", "vmx:asm-exit", "asm", "exit asm after the RSB fill and the host SPEC_CTRL restore, before returning to C");
  return [
    { id: "vmx:vcpu-run", kind: "c", nmiOpen: true, description: "vmx_vcpu_run: write dirty RSP/RIP to the VMCS, reset dirty", run: writeBack },
    anchorSite("vcpu-run", "vmx:vcpu-enter-exit", "c", "vmx_vcpu_enter_exit: the flags __vmx_vcpu_run gets are computed here"),
    anchorSite("asm-entry", "vmx:asm-entry", "asm", "__vmx_vcpu_run entry, before the guest SPEC_CTRL write"),
    { id: "vmx:asm-spec-ctrl-guest", kind: "asm", nmiOpen: true, description: "__vmx_vcpu_run: guest SPEC_CTRL" },
    { id: "vmx:asm-load-gprs", kind: "asm", nmiOpen: true, description: "__vmx_vcpu_run: load guest RAX..R15 from regs[] (not RSP)", run: loadGprs },
    anchorSite("asm-before-vmenter", "vmx:asm-before-vmenter", "asm", "asm after the GPR load, just before VMLAUNCH/VMRESUME"),
    { id: "vmx:vmenter", kind: "hw", nmiOpen: false, description: "VM-entry: guest RSP/RIP/RFLAGS from the VMCS (or VM-Fail)", run: vmenter },
    exitPathOnly({ id: "guest", kind: "guest", nmiOpen: true, description: "guest runs (VMX non-root)" }),
    exitPathOnly({ id: "vmx:vmexit", kind: "hw", nmiOpen: false, description: "VM-exit: guest RSP/RIP to the VMCS, exit information written", run: vmexit }),
    exitPathOnly(anchorSite("asm-after-vmexit", "vmx:asm-after-vmexit", "asm", "asm right after VM-exit, before any C")),
    exitPathOnly({ id: "vmx:asm-store-gprs", kind: "asm", nmiOpen: true, description: "__vmx_vcpu_run: store guest GPRs to regs[]", run: storeGprs }),
    { id: "vmx:asm-clear-gprs", kind: "asm", nmiOpen: true, description: "__vmx_vcpu_run: zero the GPRs so no guest value lingers (VM-Fail too)", run: clearGprs },
    { id: "vmx:asm-rsb-fill", kind: "asm", nmiOpen: true, description: "__vmx_vcpu_run: FILL_RETURN_BUFFER before the first unbalanced RET" },
    ...(pre ? [asmExit, specCtrlHost] : [specCtrlHost, asmExit]),
    { id: "vmx:clear-lazy-avail", kind: "c", nmiOpen: true, description: "avail &= ~VMX_REGS_LAZY_LOAD_SET (after every exit, even VM-Fail)", run: clearLazyAvail },
    { id: "vmx:handle-nmi", kind: "c", nmiOpen: true, description: "vmx_handle_nmi (noinstr C), guest XCR0 still live", run: handleNmi },
  ];
}
