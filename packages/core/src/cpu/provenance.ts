/**
 * Provenance tags: whose value sits in a register (docs/model.md#state). Every R0–R31 value in
 * the model carries one next to its 64 bits, so a leak (a host value readable by a guest) and a
 * corruption (a guest reading something it did not write) are exact checks, not heuristics.
 *
 * Tags are small integers so register files stay typed arrays (cheap to copy and hash):
 * 0 init, 1 host user (the VMM task), 2 host kernel, GUEST_BASE + n the guest of vCPU n.
 */
export type ProvenanceTag = number;

export const Tag = {
  init: 0,
  hostUser: 1,
  hostKernel: 2,
  guest: (vcpu: number): ProvenanceTag => GUEST_BASE + vcpu,
} as const;

const GUEST_BASE = 16;

export const isGuestTag = (t: ProvenanceTag): boolean => t >= GUEST_BASE;
export const isHostTag = (t: ProvenanceTag): boolean => t === Tag.hostUser || t === Tag.hostKernel;
export const guestOfTag = (t: ProvenanceTag): number | undefined => (t >= GUEST_BASE ? t - GUEST_BASE : undefined);

export function describeTag(t: ProvenanceTag): string {
  if (t === Tag.init) return "init";
  if (t === Tag.hostUser) return "host-user";
  if (t === Tag.hostKernel) return "host-kernel";
  if (t >= GUEST_BASE) return `guest${t - GUEST_BASE}`;
  return `tag${t}`;
}
