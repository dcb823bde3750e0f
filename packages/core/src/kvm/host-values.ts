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
