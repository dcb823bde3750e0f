import { PROFILES, profileIndex, type GuestProfile, type HostProfile } from "./profiles.js";

/** One cell of the verdict matrix: a design on a backend from one host/guest start. */
export interface CellSpec {
  design: string;
  backend: string;
  host: HostProfile;
  guest: GuestProfile;
}

/** Stable id of a cell (merge keys, file names). */
export function cellId(c: CellSpec): string {
  const host = !c.host.cpuApx ? "host-noapx" : c.host.kernelApx ? "host-apx-mapxf" : "host-apx";
  return `${c.design}.${c.backend}.${host}.guest-${c.guest.apx ? "apx" : "noapx"}`;
}

/**
 * Every cell, in the canonical order: designs and backends in the order given, then profiles in
 * PROFILES order. Sharding and merging rely on this order being deterministic.
 */
export function enumerateCells(designs: readonly string[], backends: readonly string[]): CellSpec[] {
  const cells: CellSpec[] = [];
  for (const design of designs) {
    for (const backend of backends) {
      for (const p of PROFILES) cells.push({ design, backend, host: { ...p.host }, guest: { ...p.guest } });
    }
  }
  return cells;
}

/** Orders cells as enumerateCells would, given the design and backend orders. */
export function cellComparator(designs: readonly string[], backends: readonly string[]): (a: CellSpec, b: CellSpec) => number {
  const d = (x: string) => {
    const i = designs.indexOf(x);
    return i < 0 ? designs.length : i;
  };
  const b = (x: string) => {
    const i = backends.indexOf(x);
    return i < 0 ? backends.length : i;
  };
  return (x, y) =>
    d(x.design) - d(y.design) ||
    x.design.localeCompare(y.design) ||
    b(x.backend) - b(y.backend) ||
    x.backend.localeCompare(y.backend) ||
    profileIndex(x) - profileIndex(y);
}
