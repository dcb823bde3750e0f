/**
 * The enabled event alphabet of a state, bounded for exhaustive exploration: a small fixed set of
 * values per write, a few registers, each event kind at most a handful of times. The checker narrows
 * or widens it through AlphabetOptions.
 */
import { XFEATURE_MASK } from "../cpu/xfeatures.js";
import type { KvmxEvent, CoreEventKind } from "./events.js";
import type { MachineState } from "./machine-state.js";
import type { ResolvedConfig } from "./machine.js";
import { vcpuGuestSupportedXcr0 } from "./xcr.js";

export interface AlphabetOptions {
  /** Values guest writes and userspace SETs use ("0x…"); default two distinct guest values. */
  values?: readonly string[];
  /** EGPRs the guest writes/reads; default r16 and r31. */
  egprs?: readonly string[];
  /** Event kinds to offer (default: all core kinds). */
  include?: readonly CoreEventKind[];
  exclude?: readonly CoreEventKind[];
  /** NMI sites to offer: "all" NMI-open sites (default) or a list of site ids. */
  nmiSites?: "all" | readonly string[];
  /** Designs a migration may move to (default: the machine's own design). */
  migrateTo?: readonly string[];
  /** XCR0 values guest XSETBV / SET_XCRS use (default: guest-supported XCR0 with and without APX). */
  xcr0Values?: readonly string[];
}

export const DEFAULT_VALUES = ["0x1111111111111111", "0x2222222222222222"] as const;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

export function eventAlphabet(cfg: ResolvedConfig, st: MachineState, nmiSites: readonly string[]): KvmxEvent[] {
  const a = cfg.alphabet;
  const on = (k: CoreEventKind): boolean => (a.include ? a.include.includes(k) : true) && !(a.exclude ?? []).includes(k);
  const values = a.values ?? DEFAULT_VALUES;
  const egprs = a.egprs ?? ["r16", "r31"];
  const v = st.vcpus[st.current]!;
  const supported = vcpuGuestSupportedXcr0(v, cfg.supportedXcr0);
  const xcr0s = a.xcr0Values ?? [...new Set([hex(supported), hex(supported & ~XFEATURE_MASK.APX)])];
  const out: KvmxEvent[] = [];
  if (on("guest-xsetbv")) for (const x of xcr0s) out.push({ kind: "guest-xsetbv", value: x });
  if (on("guest-write")) for (const r of egprs) for (const val of values) out.push({ kind: "guest-write", reg: r, value: val });
  if (on("guest-read")) for (const r of egprs) out.push({ kind: "guest-read", reg: r });
  if (on("guest-wrmsrns-imm")) out.push({ kind: "guest-wrmsrns-imm", reg: egprs[0] ?? "r16", value: values[values.length - 1] ?? "0x0" });
  if (on("guest-rdmsr-imm")) out.push({ kind: "guest-rdmsr-imm", reg: egprs[egprs.length - 1] ?? "r31" });
  if (on("guest-cpuid")) out.push({ kind: "guest-cpuid" });
  if (on("guest-hlt")) out.push({ kind: "guest-hlt" });
  if (on("guest-io")) out.push({ kind: "guest-io" });
  if (on("nmi") && st.armedNmi === undefined) {
    const sites = a.nmiSites === undefined || a.nmiSites === "all" ? nmiSites : a.nmiSites.filter((s) => nmiSites.includes(s));
    for (const s of sites) out.push({ kind: "nmi", site: s });
  }
  if (on("preempt")) out.push({ kind: "preempt" });
  if (on("get-xsave")) out.push({ kind: "get-xsave" });
  if (on("set-xsave")) {
    out.push({ kind: "set-xsave", apx: [values[values.length - 1] ?? "0x0"] });
    out.push({ kind: "set-xsave" });
  }
  if (on("get-regs")) out.push({ kind: "get-regs" });
  if (on("set-regs")) out.push({ kind: "set-regs", regs: { rax: values[0] ?? "0x0" } });
  if (on("set-xcrs")) for (const x of xcr0s) out.push({ kind: "set-xcrs", xcr0: x });
  if (on("migrate") && st.vcpus.length === 1) {
    for (const d of a.migrateTo ?? [cfg.design.name]) out.push(d === cfg.design.name ? { kind: "migrate" } : { kind: "migrate", design: d });
  }
  if (on("reset")) out.push({ kind: "reset" });
  if (on("init")) out.push({ kind: "init" });
  for (const e of cfg.backend.vendorEvents?.(st) ?? []) out.push(e);
  return out;
}
