/**
 * KVM's `enum kvm_reg` (docs/facts.md#kvm-reg-enum) and the per-vCPU register layout. POST (after the 2026 prep
 * series) has a dedicated RIP and VCPU_REG_* names; PRE kept RIP in regs[16], named the rest
 * VCPU_EXREG_* and used u32 masks. The "do not merge" APX demo puts R16..R31 at 16..31 (RIP = 32).
 */

/** POST `enum kvm_reg` without EGPRs in regs[], values exactly as docs/facts.md#kvm-reg-enum lists them. */
export enum kvm_reg {
  VCPU_REG_RAX = 0,
  VCPU_REG_RCX = 1,
  VCPU_REG_RDX = 2,
  VCPU_REG_RBX = 3,
  VCPU_REG_RSP = 4,
  VCPU_REG_RBP = 5,
  VCPU_REG_RSI = 6,
  VCPU_REG_RDI = 7,
  VCPU_REG_R8 = 8,
  VCPU_REG_R9 = 9,
  VCPU_REG_R10 = 10,
  VCPU_REG_R11 = 11,
  VCPU_REG_R12 = 12,
  VCPU_REG_R13 = 13,
  VCPU_REG_R14 = 14,
  VCPU_REG_R15 = 15,
  VCPU_REG_RIP = 16,
  VCPU_REG_PDPTR = 17,
  VCPU_REG_CR0 = 18,
  VCPU_REG_CR3 = 19,
  VCPU_REG_CR4 = 20,
  VCPU_REG_RFLAGS = 21,
  VCPU_REG_SEGMENTS = 22,
  VCPU_REG_EXIT_INFO_1 = 23,
  VCPU_REG_EXIT_INFO_2 = 24,
}
export const NR_VCPU_GENERAL_PURPOSE_REGS = 16;
export const NR_VCPU_TOTAL_REGS = 25;

/** The non-GPR registers every layout has, in enum order after the GPRs (and RIP). */
export const NON_GPR_REGS = ["RIP", "PDPTR", "CR0", "CR3", "CR4", "RFLAGS", "SEGMENTS", "EXIT_INFO_1", "EXIT_INFO_2"] as const;
export type NonGprReg = (typeof NON_GPR_REGS)[number];

const GPR_SUFFIX = [
  "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI",
  "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15",
  "R16", "R17", "R18", "R19", "R20", "R21", "R22", "R23",
  "R24", "R25", "R26", "R27", "R28", "R29", "R30", "R31",
] as const;

/**
 * The numbering one vCPU uses. `pre`: PRE code generation (RIP lives in regs[16], u32 masks,
 * VCPU_EXREG_* names). `egprsInRegs`: R16..R31 are enum values 16..31 and live in regs[].
 */
export interface RegLayout {
  readonly pre: boolean;
  readonly egprsInRegs: boolean;
  /** NR_VCPU_GENERAL_PURPOSE_REGS: 16, or 32 with EGPRs in regs[]. */
  readonly nrGprs: number;
  /** Upper bound (exclusive) for register_read_raw/write_raw: nrGprs, PRE nrGprs + 1 (RIP in regs[]). */
  readonly rawLimit: number;
  /** NR_VCPU_TOTAL_REGS: 25, or 41 with EGPRs. */
  readonly nrTotal: number;
  readonly RIP: number;
  readonly PDPTR: number;
  readonly CR0: number;
  readonly CR3: number;
  readonly CR4: number;
  readonly RFLAGS: number;
  readonly SEGMENTS: number;
  readonly EXIT_INFO_1: number;
  readonly EXIT_INFO_2: number;
  /** Bitmap width: PRE u32 masks, POST one machine word (we use 64 bits). */
  readonly maskBits: 32 | 64;
  /** Mask of every register of the layout (all ones at vCPU creation). */
  readonly allMask: bigint;
  /** allMask as 16-bit words (bits 0..15, 16..31, 32..47), as the packed state keeps the bitmaps. */
  readonly allWords: readonly number[];
  /** Kernel-style name of register `reg` in this layout (VCPU_REG_RIP, VCPU_EXREG_PDPTR, ...). */
  name(reg: number): string;
}

const layoutCache = new Map<string, RegLayout>();

/** The layout for a code generation (`pre`) and EGPR home; cached, layouts are immutable. */
export function regLayout(opts: { pre?: boolean; egprsInRegs?: boolean } = {}): RegLayout {
  const pre = opts.pre ?? false;
  const egprsInRegs = opts.egprsInRegs ?? false;
  const key = `${pre}/${egprsInRegs}`;
  const cached = layoutCache.get(key);
  if (cached) return cached;
  const nrGprs = egprsInRegs ? 32 : NR_VCPU_GENERAL_PURPOSE_REGS;
  const base = nrGprs; // RIP follows the GPRs in both generations
  const names: string[] = [];
  for (let i = 0; i < nrGprs; i++) names.push(`VCPU_REG_${GPR_SUFFIX[i]}`);
  NON_GPR_REGS.forEach((n, i) => {
    // PRE: RIP was a regs[] slot named VCPU_REGS_RIP; the others were "extra" registers.
    names.push(pre ? (n === "RIP" ? "VCPU_REGS_RIP" : `VCPU_EXREG_${n}`) : `VCPU_REG_${n}`);
    void i;
  });
  const nrTotal = base + NON_GPR_REGS.length;
  const layout: RegLayout = {
    pre,
    egprsInRegs,
    nrGprs,
    rawLimit: pre ? nrGprs + 1 : nrGprs,
    nrTotal,
    RIP: base,
    PDPTR: base + 1,
    CR0: base + 2,
    CR3: base + 3,
    CR4: base + 4,
    RFLAGS: base + 5,
    SEGMENTS: base + 6,
    EXIT_INFO_1: base + 7,
    EXIT_INFO_2: base + 8,
    maskBits: pre ? 32 : 64,
    allMask: pre ? 0xffff_ffffn : (1n << BigInt(nrTotal)) - 1n,
    allWords: [0, 0, 0],
    name: (reg) => names[reg] ?? `reg${reg}`,
  };
  if (pre && nrTotal > 32) {
    // A u32 mask cannot name registers above 31: PRE with EGPRs in regs[] was never a real layout.
    Object.assign(layout, { allMask: 0xffff_ffffn });
  }
  Object.assign(layout, { allWords: maskWords(layout.allMask) });
  layoutCache.set(key, layout);
  return layout;
}

/** Bit for register `reg` in a regs_avail/regs_dirty bitmap. */
export const regBit = (reg: number): bigint => 1n << BigInt(reg);

/** Number of 16-bit words a regs_avail/regs_dirty bitmap takes in the packed state (registers 0..47). */
export const MASK_WORDS = 3;
/** A bitmap as its 16-bit words (bits 0..15, 16..31, 32..47). */
export const maskWords = (m: bigint): number[] => [Number(m & 0xffffn), Number((m >> 16n) & 0xffffn), Number((m >> 32n) & 0xffffn)];
/** The bitmap of 16-bit words. */
export const wordsMask = (w: readonly number[]): bigint => (BigInt(w[2] ?? 0) << 32n) | (BigInt(w[1] ?? 0) << 16n) | BigInt(w[0] ?? 0);

/** Names of the registers set in `mask`, in enum order. */
export function maskNames(layout: RegLayout, mask: bigint): string[] {
  const out: string[] = [];
  for (let r = 0; r < 64 && mask >> BigInt(r) !== 0n; r++) if ((mask >> BigInt(r)) & 1n) out.push(layout.name(r));
  return out;
}
