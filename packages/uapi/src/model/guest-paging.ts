import type { GuestPhysSpace } from "./guest-memory.js";

/**
 * Linear → guest-physical translation for the simulated vCPU (SDM Vol. 3 §4.5, 4-level paging):
 * present, U/S (CPL 3 accesses) and R/W (writes at CPL 3, or with CR0.WP) at every level; 1 GiB and
 * 2 MiB pages. Not modelled: accessed/dirty bit updates, NX (EFER.NXE), PKRU, 5-level paging, TLBs.
 */
export type AccessKind = "read" | "write" | "fetch";

export interface PagingState {
  readonly cr0: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly efer: bigint;
  readonly cpl: number;
}

export type Translation = { ok: true; gpa: bigint } | { ok: false; errorCode: number };

const CR0_PG = 1n << 31n;
const CR0_WP = 1n << 16n;
const CR4_PAE = 1n << 5n;
const EFER_LMA = 1n << 10n;
const P = 1n, RW = 2n, US = 4n, PS = 0x80n;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
/** #PF error code bits (SDM §4.7) */
const PF = { P: 1, W: 2, U: 4 } as const;

export function translate(mem: GuestPhysSpace, st: PagingState, linear: bigint, access: AccessKind): Translation {
  if ((st.cr0 & CR0_PG) === 0n) return { ok: true, gpa: linear & 0xffff_ffffn };
  // Only IA-32e 4-level paging is modelled: the long-mode setup is the one guest programs use.
  if ((st.efer & EFER_LMA) === 0n || (st.cr4 & CR4_PAE) === 0n) return { ok: false, errorCode: 0 };
  const user = st.cpl === 3;
  const write = access === "write";
  const code = (present: boolean): Translation => ({
    ok: false,
    errorCode: (present ? PF.P : 0) | (write ? PF.W : 0) | (user ? PF.U : 0),
  });
  let table = st.cr3 & ADDR_MASK;
  let writable = true;
  let userOk = true;
  for (let level = 4; level >= 1; level--) {
    const shift = BigInt(12 + 9 * (level - 1));
    const index = (linear >> shift) & 0x1ffn;
    const entry = mem.readU64(table + index * 8n);
    if (entry === undefined || (entry & P) === 0n) return code(false);
    writable &&= (entry & RW) !== 0n;
    userOk &&= (entry & US) !== 0n;
    const leaf = level === 1 || ((level === 2 || level === 3) && (entry & PS) !== 0n);
    if (!leaf) {
      table = entry & ADDR_MASK;
      continue;
    }
    if (user && !userOk) return code(true);
    if (write && !writable && (user || (st.cr0 & CR0_WP) !== 0n)) return code(true);
    const pageMask = (1n << shift) - 1n;
    return { ok: true, gpa: (entry & ADDR_MASK & ~pageMask) | (linear & pageMask) };
  }
  return code(false);
}
