/**
 * The TDVMCALL ABI (GHCI; docs/facts.md#tdx-exits) on both sides. The TD's #VE handler turns an
 * instruction the module will not run into TDVMCALL: R10 = 0 and R11 = leaf (the VMX exit reason it
 * stands for), or R10 = a KVM hypercall number; arguments in R12..R15. The module passes them to KVM
 * in host GPRs, which tdx_vcpu_enter_exit copies into regs[] — KVM's scratch area for a TD: exit
 * qualification in RCX, extended qualification in RDX, GPA in R8, interrupt info in R9, R10/R11 leaf
 * and return. Values move as value ids (no bigint per exit).
 */
import { GPR_NAMES, VALUES, vid, type GuestExit, type PhysicalCpu, type VcpuState, type VendorCtx } from "@kvmx/core";
import { ONE_ID, lo32Id, numId } from "../value-ids.js";

export const R = { RAX: 0, RCX: 1, RDX: 2, RBX: 3, RSP: 4, RBP: 5, RSI: 6, RDI: 7, R8: 8, R9: 9, R10: 10, R11: 11, R12: 12, R13: 13, R14: 14, R15: 15 } as const;

/** TDVMCALL leaves the model's TDs use (GHCI: the VMX basic exit reason of the emulated instruction). */
export const TDVMCALL_LEAF = { CPUID: 10, HLT: 12, IO: 30, RDMSR: 31, WRMSR: 32 } as const;
/** TDVMCALL status codes returned in R10. */
export const TDVMCALL_STATUS = { SUCCESS: 0n, INVALID_OPERAND: 0x8000_0000_0000_0000n } as const;
/** The status codes' value ids. */
export const TDVMCALL_STATUS_ID = { SUCCESS: vid(TDVMCALL_STATUS.SUCCESS), INVALID_OPERAND: vid(TDVMCALL_STATUS.INVALID_OPERAND) } as const;
/** KVM hypercall result for an unknown hypercall number (-KVM_ENOSYS). */
export const KVM_ENOSYS = 1000n;

/**
 * The TDVMCALL a TD's #VE handler issues, as the registers it hands the module: filled in place by
 * `tdvmcallFor` / `hypercallTdvmcall` (one object per caller, reused for every exit).
 */
export class Tdvmcall {
  /** R10 (value id): 0 for a TDVMCALL leaf, the hypercall number for a KVM hypercall. */
  r10 = 0;
  /** R11..R15 (value ids, indexed by register number; 0 for a register the call does not pass). */
  readonly args: number[] = new Array<number>(16).fill(0);
  /** Instruction length the #VE handler skips once the call returns. */
  length = 0;
  /** The TD register a result lands in (rdmsr-imm's destination), besides the CPUID outputs; -1 for none. */
  resultReg = -1;

  reset(r10: number, length: number): void {
    this.r10 = r10;
    this.length = length;
    this.resultReg = -1;
    for (let r = R.R11; r <= R.R15; r++) this.args[r] = 0;
  }
}

const LEAF_ID = {
  CPUID: numId(TDVMCALL_LEAF.CPUID), HLT: numId(TDVMCALL_LEAF.HLT), IO: numId(TDVMCALL_LEAF.IO),
  RDMSR: numId(TDVMCALL_LEAF.RDMSR), WRMSR: numId(TDVMCALL_LEAF.WRMSR),
} as const;
const LOW = VALUES.low;

/** EDX:EAX of the TD's registers as one value id (the WRMSR data). */
function edxEaxId(cpu: Pick<PhysicalCpu, "gprId">): number {
  const edx = LOW[cpu.gprId(R.RDX)]!;
  const eax = cpu.gprId(R.RAX);
  return edx === 0 ? lo32Id(eax) : vid((BigInt(edx) << 32n) | BigInt(LOW[eax]!));
}

/**
 * Guest side (#VE handler): the TDVMCALL for `e`, from the TD's live registers, into `out`; false when
 * `e` is not a TDVMCALL (NMI, interrupt, preemption timer).
 */
export function tdvmcallFor(e: GuestExit, cpu: Pick<PhysicalCpu, "gprId">, out: Tdvmcall): boolean {
  const a = out.args;
  switch (e.kind) {
    case "cpuid":
      out.reset(0, e.length);
      a[R.R11] = LEAF_ID.CPUID;
      a[R.R12] = lo32Id(cpu.gprId(R.RAX));
      a[R.R13] = lo32Id(cpu.gprId(R.RCX));
      return true;
    case "hlt":
      out.reset(0, e.length);
      a[R.R11] = LEAF_ID.HLT;
      return true;
    case "io":
      out.reset(0, e.length);
      a[R.R11] = LEAF_ID.IO;
      a[R.R12] = ONE_ID;
      a[R.R13] = ONE_ID;
      a[R.R14] = numId(e.port);
      a[R.R15] = numId(LOW[cpu.gprId(R.RAX)]! & 0xff);
      return true;
    case "wrmsr":
      out.reset(0, e.length);
      a[R.R11] = LEAF_ID.WRMSR;
      a[R.R12] = lo32Id(cpu.gprId(R.RCX));
      a[R.R13] = edxEaxId(cpu);
      return true;
    case "wrmsrns-imm":
      out.reset(0, e.length);
      a[R.R11] = LEAF_ID.WRMSR;
      a[R.R12] = numId(e.msr);
      a[R.R13] = cpu.gprId(e.reg);
      return true;
    case "rdmsr-imm":
      out.reset(0, e.length);
      a[R.R11] = LEAF_ID.RDMSR;
      a[R.R12] = numId(e.msr);
      out.resultReg = e.reg;
      return true;
    default:
      return false;
  }
}

/** A KVM hypercall from a TD (tdx_kvm_hypercall): R10 = nr (a value id), R11..R14 = its four arguments (RBX, RCX, RDX, RSI). */
export function hypercallTdvmcall(nrId: number, cpu: Pick<PhysicalCpu, "gprId">, out: Tdvmcall): void {
  out.reset(nrId, 0);
  out.args[R.R11] = cpu.gprId(R.RBX);
  out.args[R.R12] = cpu.gprId(R.RCX);
  out.args[R.R13] = cpu.gprId(R.RDX);
  out.args[R.R14] = cpu.gprId(R.RSI);
}

/** tdvmcall_exit_type / tdvmcall_leaf, read from KVM's scratch regs[]. */
export const tdvmcallExitType = (v: VcpuState): bigint => v.regs.get(R.R10);
export const tdvmcallLeaf = (v: VcpuState): number => LOW[v.regs.id(R.R11)]!;

/** tdvmcall_set_return_code / _val: the results (value ids) KVM leaves in R10/R11 for the module to hand back. */
export function tdvmcallSetReturn(ctx: VendorCtx, statusId: number, valueId?: number): void {
  const regs = ctx.vcpu.regs;
  regs.setId(R.R10, statusId, ctx.guestTag);
  if (valueId !== undefined) regs.setId(R.R11, valueId, ctx.guestTag);
}

export const regName = (r: number): string => GPR_NAMES[r] ?? `r${r}`;
