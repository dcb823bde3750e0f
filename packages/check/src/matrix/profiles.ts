/**
 * The starts the checker explores from: host CPU with or without APX, host kernel built with -mapxf
 * or not, guest CPUID with or without APX. A -mapxf kernel cannot
 * boot on a CPU without APX (its own code would #UD), so that host is not a start at all; every other
 * combination is a cell, and the backend/design decide whether it applies (n/a with a reason).
 */
export interface HostProfile {
  cpuApx: boolean;
  kernelApx: boolean;
}
export interface GuestProfile {
  apx: boolean;
}
export interface Profile {
  host: HostProfile;
  guest: GuestProfile;
}

export const HOST_PROFILES: readonly HostProfile[] = [
  { cpuApx: false, kernelApx: false },
  { cpuApx: true, kernelApx: false },
  { cpuApx: true, kernelApx: true },
];
export const GUEST_PROFILES: readonly GuestProfile[] = [{ apx: false }, { apx: true }];

/**
 * The host and guest kinds by name, for choosing matrix columns (`kvmx check --host mapxf --guest apx`):
 * the words profileLabel prints, each with the tag the matrix header shows.
 */
export const HOST_KINDS = {
  "no-apx": { tag: "H-", host: { cpuApx: false, kernelApx: false }, description: "host CPU without APX" },
  apx: { tag: "H+", host: { cpuApx: true, kernelApx: false }, description: "APX CPU, today's kernel" },
  mapxf: { tag: "Hk", host: { cpuApx: true, kernelApx: true }, description: "APX CPU, kernel built with -mapxf" },
} as const satisfies Record<string, { tag: string; host: HostProfile; description: string }>;
export type HostKind = keyof typeof HOST_KINDS;
export const HOST_KIND_NAMES = Object.keys(HOST_KINDS) as HostKind[];

export const GUEST_KINDS = {
  "no-apx": { tag: "g-", guest: { apx: false }, description: "guest CPUID without APX" },
  apx: { tag: "g+", guest: { apx: true }, description: "guest CPUID with APX" },
} as const satisfies Record<string, { tag: string; guest: GuestProfile; description: string }>;
export type GuestKind = keyof typeof GUEST_KINDS;
export const GUEST_KIND_NAMES = Object.keys(GUEST_KINDS) as GuestKind[];

/** The kind name of a host start ("no-apx", "apx", "mapxf"). */
export const hostKind = (h: HostProfile): HostKind => (!h.cpuApx ? "no-apx" : h.kernelApx ? "mapxf" : "apx");
export const guestKind = (g: GuestProfile): GuestKind => (g.apx ? "apx" : "no-apx");

export const PROFILES: readonly Profile[] = HOST_PROFILES.flatMap((host) => GUEST_PROFILES.map((guest) => ({ host, guest })));

/** Short label for tables: "host:-apx guest:-apx", "host:apx+mapxf guest:apx". */
export function profileLabel(p: Profile): string {
  const host = !p.host.cpuApx ? "no-apx" : p.host.kernelApx ? "apx+mapxf" : "apx";
  return `host ${host} / guest ${p.guest.apx ? "apx" : "no-apx"}`;
}

/** Even shorter, for a table header cell: "H- g-", "H+ g+", "H+k g+". */
export function profileTag(p: Profile): string {
  const host = !p.host.cpuApx ? "H-" : p.host.kernelApx ? "Hk" : "H+";
  return `${host} g${p.guest.apx ? "+" : "-"}`;
}

export const profileIndex = (p: Profile): number =>
  PROFILES.findIndex((q) => q.host.cpuApx === p.host.cpuApx && q.host.kernelApx === p.host.kernelApx && q.guest.apx === p.guest.apx);
