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
