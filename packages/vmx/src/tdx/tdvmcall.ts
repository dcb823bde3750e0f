/**
 * The TDVMCALL ABI (GHCI; FACTS.md §5) on both sides. The TD's #VE handler turns an instruction the
 * module will not run into TDVMCALL: R10 = 0 and R11 = leaf (the VMX exit reason it stands for), or
 * R10 = a KVM hypercall number; arguments in R12..R15. The module passes them to KVM in host GPRs,
 * which tdx_vcpu_enter_exit copies into regs[] — KVM's scratch area for a TD: exit qualification in
 * RCX, extended qualification in RDX, GPA in R8, interrupt info in R9, R10/R11 leaf and return.
 */
import { GPR_NAMES, type GuestExit, type VcpuState, type VendorCtx } from "@kvmx/core";

export const R = { RAX: 0, RCX: 1, RDX: 2, RBX: 3, RSP: 4, RBP: 5, RSI: 6, RDI: 7, R8: 8, R9: 9, R10: 10, R11: 11, R12: 12, R13: 13, R14: 14, R15: 15 } as const;

/** TDVMCALL leaves the model's TDs use (GHCI: the VMX basic exit reason of the emulated instruction). */
export const TDVMCALL_LEAF = { CPUID: 10, HLT: 12, IO: 30, RDMSR: 31, WRMSR: 32 } as const;
/** TDVMCALL status codes returned in R10. */
export const TDVMCALL_STATUS = { SUCCESS: 0n, INVALID_OPERAND: 0x8000_0000_0000_0000n } as const;
/** KVM hypercall result for an unknown hypercall number (-KVM_ENOSYS). */
export const KVM_ENOSYS = 1000n;

/** The TDVMCALL a TD's #VE handler issues for an exit kind (undefined: not a TDVMCALL — NMI, interrupt). */
export interface Tdvmcall {
  readonly r10: bigint;
  readonly args: Readonly<Partial<Record<11 | 12 | 13 | 14 | 15, bigint>>>;
  /** Instruction length the #VE handler skips once the call returns. */
  readonly length: number;
  /** The TD register a result lands in (rdmsr-imm's destination), besides the CPUID outputs. */
  readonly resultReg?: number;
}

/** Guest side (#VE handler): the TDVMCALL for `e`, from the TD's live registers `gpr`. */
export function tdvmcallFor(e: GuestExit, gpr: ArrayLike<bigint>): Tdvmcall | undefined {
  const g = (r: number) => gpr[r] ?? 0n;
  const lo32 = (x: bigint) => x & 0xffff_ffffn;
  switch (e.kind) {
    case "cpuid":
      return { r10: 0n, args: { 11: BigInt(TDVMCALL_LEAF.CPUID), 12: lo32(g(R.RAX)), 13: lo32(g(R.RCX)) }, length: e.length };
    case "hlt":
      return { r10: 0n, args: { 11: BigInt(TDVMCALL_LEAF.HLT) }, length: e.length };
    case "io":
      return { r10: 0n, args: { 11: BigInt(TDVMCALL_LEAF.IO), 12: 1n, 13: 1n, 14: BigInt(e.port), 15: g(R.RAX) & 0xffn }, length: e.length };
    case "wrmsr":
      return { r10: 0n, args: { 11: BigInt(TDVMCALL_LEAF.WRMSR), 12: lo32(g(R.RCX)), 13: (lo32(g(R.RDX)) << 32n) | lo32(g(R.RAX)) }, length: e.length };
    case "wrmsrns-imm":
      return { r10: 0n, args: { 11: BigInt(TDVMCALL_LEAF.WRMSR), 12: BigInt(e.msr), 13: g(e.reg) }, length: e.length };
    case "rdmsr-imm":
      return { r10: 0n, args: { 11: BigInt(TDVMCALL_LEAF.RDMSR), 12: BigInt(e.msr) }, length: e.length, resultReg: e.reg };
    default:
      return undefined;
  }
}

/** A KVM hypercall from a TD (tdx_kvm_hypercall): R10 = nr, R11..R14 = its four arguments. */
export function hypercallTdvmcall(nr: bigint, gpr: ArrayLike<bigint>): Tdvmcall {
  return { r10: nr, args: { 11: gpr[R.RBX] ?? 0n, 12: gpr[R.RCX] ?? 0n, 13: gpr[R.RDX] ?? 0n, 14: gpr[R.RSI] ?? 0n }, length: 0 };
}

/** tdvmcall_exit_type / tdvmcall_leaf, read from KVM's scratch regs[]. */
export const tdvmcallExitType = (v: VcpuState): bigint => v.regs[R.R10] ?? 0n;
export const tdvmcallLeaf = (v: VcpuState): number => Number((v.regs[R.R11] ?? 0n) & 0xffff_ffffn);

/** tdvmcall_set_return_code / _val: the results KVM leaves in R10/R11 for the module to hand back. */
export function tdvmcallSetReturn(ctx: VendorCtx, status: bigint, value?: bigint): void {
  const v = ctx.vcpu;
  v.regs[R.R10] = status;
  v.regsTag[R.R10] = ctx.guestTag;
  if (value !== undefined) {
    v.regs[R.R11] = BigInt.asUintN(64, value);
    v.regsTag[R.R11] = ctx.guestTag;
  }
}

export const regName = (r: number): string => GPR_NAMES[r] ?? `r${r}`;
