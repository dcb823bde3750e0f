/**
 * The enabled event alphabet of a state, bounded for exhaustive exploration: a small fixed set of
 * values per write, a few registers, every event kind. The checker narrows or widens it through
 * AlphabetOptions. Events are built once per machine (the same objects every time, so guest programs
 * compiled for them are reused) and filtered per state by two rules that lose nothing:
 *
 *  - symmetry: every event that writes a data value is offered with each value of the data set, so
 *    renaming the data values maps the alphabet onto itself (the fingerprint renames them —
 *    docs/model.md#data-independence);
 *  - NMIs commute with ioctls: arming an NMI changes nothing but the armed site, and no ioctl reads it,
 *    so `nmi S; ioctl` and `ioctl; nmi S` reach the same state with the same violations. In a state
 *    with an armed NMI only the events that run the vCPU are offered (the NMI fires there).
 */
import { XFEATURE_MASK } from "../cpu/xfeatures.js";
import type { KvmxEvent, CoreEventKind } from "./events.js";
import type { MachineState } from "./machine-state.js";
import type { ResolvedConfig } from "./machine.js";
import { vcpuGuestSupportedXcr0 } from "./xcr.js";
import { hostNmiHandlerObservable } from "./run-context.js";
import { featureAlphabet, type FeatureAlphabet } from "./feature-events.js";

export interface AlphabetOptions {
  /** Values guest writes and userspace SETs use ("0x…"); default two distinct guest values. */
  values?: readonly string[];
  /** EGPRs the guest writes/reads; default r16 and r31. */
  egprs?: readonly string[];
  /** Event kinds to offer (default: all core kinds). */
  include?: readonly CoreEventKind[];
  exclude?: readonly CoreEventKind[];
  /**
   * NMI sites to offer: "observable" (default) — "guest" (an NMI VM-exit) and, when the host NMI
   * handler can change anything the model tracks (a -mapxf kernel), every NMI-open site; "all"
   * NMI-open sites; or a list of site ids.
   */
  nmiSites?: "observable" | "all" | readonly string[];
  /**
   * How NMIs at host sites are explored when the host NMI handler is observable (nmiSites
   * "observable", a -mapxf kernel): "events" (default) offers an `nmi` event per NMI-open host site;
   * "folded" offers only the guest-time NMI and checks, in every event that runs the vCPU, the handler
   * at every NMI-open host site it passes. Sound because that handler changes nothing the model keeps
   * unless it breaks apxf-c-needs-apx (docs/model.md#host-nmi-folding); such a violation comes back as
   * a folded one (ApplyResult.folded) whose path has the `nmi` event put back.
   */
  hostNmi?: "events" | "folded";
  /** Designs a migration may move to (default: the machine's own design). */
  migrateTo?: readonly string[];
  /** XCR0 values guest XSETBV / SET_XCRS use (default: guest-supported XCR0 with and without APX). */
  xcr0Values?: readonly string[];
  /**
   * The events of the model features (feature-events.ts) to offer; none by default. Each needs its
   * feature in the machine's variant.
   */
  extra?: FeatureAlphabet;
}

export const DEFAULT_VALUES = ["0x1111111111111111", "0x2222222222222222"] as const;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Event kinds that run the vCPU (KVM_RUN): the ones an armed NMI can fire in. */
const RUNS_VCPU: ReadonlySet<string> = new Set<CoreEventKind>([
  "guest-xsetbv", "guest-write", "guest-read", "guest-wrmsrns-imm", "guest-rdmsr-imm", "guest-cpuid", "guest-hlt", "guest-io", "preempt", "vm-fail",
]);
const CORE_KINDS: ReadonlySet<string> = new Set<string>([...RUNS_VCPU, "nmi", "get-xsave", "set-xsave", "get-regs", "set-regs", "set-xcrs", "migrate", "reset", "init"]);

/** Whether `e` may follow an armed NMI (it runs the vCPU, or it is a backend's event, which may). */
export const mayFollowNmi = (e: KvmxEvent): boolean => RUNS_VCPU.has(e.kind) || !CORE_KINDS.has(e.kind);

interface Alphabets {
  /** No NMI armed, one vCPU. */
  readonly idle: readonly KvmxEvent[];
  /** No NMI armed, after a migration (no second migration). */
  readonly migrated: readonly KvmxEvent[];
}
const cache = new WeakMap<ResolvedConfig, Alphabets>();

/** The core events of a machine, in a fixed order (built once). */
function coreEvents(cfg: ResolvedConfig, nmiSites: readonly string[], withMigrate: boolean): KvmxEvent[] {
  const a = cfg.alphabet;
  const on = (k: CoreEventKind): boolean => kindOffered(a, k);
  const values = a.values ?? DEFAULT_VALUES;
  const egprs = a.egprs ?? ["r16", "r31"];
  const supported = vcpuGuestSupportedXcr0({ cpuid: cfg.layout.vcpuBlock.cpuid }, cfg.supportedXcr0);
  const xcr0s = a.xcr0Values ?? [...new Set([hex(supported), hex(supported & ~XFEATURE_MASK.APX)])];
  const out: KvmxEvent[] = [];
  if (on("guest-xsetbv")) for (const x of xcr0s) out.push({ kind: "guest-xsetbv", value: x });
  if (on("guest-write")) for (const r of egprs) for (const val of values) out.push({ kind: "guest-write", reg: r, value: val });
  if (on("guest-read")) for (const r of egprs) out.push({ kind: "guest-read", reg: r });
  if (on("guest-wrmsrns-imm")) for (const val of values) out.push({ kind: "guest-wrmsrns-imm", reg: egprs[0] ?? "r16", value: val });
  if (on("guest-rdmsr-imm")) out.push({ kind: "guest-rdmsr-imm", reg: egprs[egprs.length - 1] ?? "r31" });
  if (on("guest-cpuid")) out.push({ kind: "guest-cpuid" });
  if (on("guest-hlt")) out.push({ kind: "guest-hlt" });
  if (on("guest-io")) out.push({ kind: "guest-io" });
  if (on("nmi")) {
    const offered =
      a.nmiSites === "all"
        ? nmiSites
        : a.nmiSites === undefined || a.nmiSites === "observable"
          ? nmiSites.filter((s) => s === "guest" || (hostNmiHandlerObservable(cfg) && !cfg.foldHostNmis))
          : a.nmiSites.filter((s) => nmiSites.includes(s));
    for (const s of offered) out.push({ kind: "nmi", site: s });
  }
  if (on("preempt")) out.push({ kind: "preempt" });
  if (on("vm-fail") && cfg.backend.canVmFail) out.push({ kind: "vm-fail" });
  if (on("get-xsave")) out.push({ kind: "get-xsave" });
  if (on("set-xsave")) {
    for (const val of values) out.push({ kind: "set-xsave", apx: [val] });
    out.push({ kind: "set-xsave" });
  }
  if (on("get-regs")) out.push({ kind: "get-regs" });
  if (on("set-regs")) for (const val of values) out.push({ kind: "set-regs", regs: { rax: val } });
  if (on("set-xcrs")) for (const x of xcr0s) out.push({ kind: "set-xcrs", xcr0: x });
  if (on("migrate") && withMigrate) {
    for (const d of a.migrateTo ?? [cfg.design.name]) out.push(d === cfg.design.name ? { kind: "migrate" } : { kind: "migrate", design: d });
  }
  if (on("reset")) out.push({ kind: "reset" });
  if (on("init")) out.push({ kind: "init" });
  if (a.extra) out.push(...featureAlphabet(cfg, a.extra, withMigrate));
  return out;
}

export function eventAlphabet(cfg: ResolvedConfig, st: MachineState, nmiSites: readonly string[]): readonly KvmxEvent[] {
  let c = cache.get(cfg);
  if (!c) cache.set(cfg, (c = { idle: coreEvents(cfg, nmiSites, true), migrated: coreEvents(cfg, nmiSites, false) }));
  const base = st.vcpus.length === 1 ? c.idle : c.migrated;
  const vendor = cfg.backend.vendorEvents?.(st) ?? [];
  if (st.armedNmiIndex !== 0) {
    const out = base.filter((e) => e.kind !== "nmi" && mayFollowNmi(e));
    for (const e of vendor) if (mayFollowNmi(e)) out.push(e);
    return out;
  }
  return vendor.length === 0 ? base : [...base, ...vendor];
}

/**
 * Whether this machine folds host NMIs into the events that run the vCPU (AlphabetOptions.hostNmi
 * "folded", with the observable NMI sites offered and a host NMI handler that can break something).
 */
export function hostNmisFolded(cfg: Pick<ResolvedConfig, "alphabet" | "kernelApx">): boolean {
  const a = cfg.alphabet;
  return a.hostNmi === "folded" && kindOffered(a, "nmi") && (a.nmiSites === undefined || a.nmiSites === "observable") && hostNmiHandlerObservable(cfg);
}

/** Whether the alphabet offers events of kind `k` at all (its include and exclude lists). */
function kindOffered(a: AlphabetOptions, k: CoreEventKind): boolean {
  return (a.include ? a.include.includes(k) : true) && !(a.exclude ?? []).includes(k);
}
