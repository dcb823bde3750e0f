/**
 * The recognisable values host code leaves in R16..R31 (so a leak or a clobber names its source).
 * A module of their own: sites and the Machine both need them, and neither may import the other first.
 */

/** The VMM task's own R16..R31 (host-user): distinct recognisable values (0x5655_4d00_0000_00nn, "VUM"). */
export const HOST_USER_EGPR = (i: number): bigint => 0x5655_4d00_0000_0000n + BigInt(i);
/** What "another host task using APX" leaves in R16..R31 when it is preempted in. */
export const OTHER_TASK_EGPR = (i: number): bigint => 0x4f54_4800_0000_0000n + BigInt(i);
/** What -mapxf host kernel C code leaves in R16..R31 (caller-saved scratch). */
export const HOST_KERNEL_EGPR = (i: number): bigint => 0x4b45_5200_0000_0000n + BigInt(i);

/** Where the model's host memory objects sit (64-byte aligned, canonical kernel addresses). */
export const HOST_ADDR = {
  /** &vcpu->arch.regs[0]. */
  regs: 0xffff_8880_0010_0000n,
  /** The guest fpstate buffer (XSAVE standard format). */
  guestFpstate: 0xffff_8880_0020_0000n,
  /** The VMM task's fpstate buffer. */
  userFpstate: 0xffff_8880_0030_0000n,
  /** Top of the kernel stack (16-byte aligned). */
  stackTop: 0xffff_c900_0000_8000n,
  /** Scratch word for REX2 reads of a single EGPR (fpstate design). */
  scratch: 0xffff_8880_0040_0000n,
} as const;
