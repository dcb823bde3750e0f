/**
 * Findings: violations that come from KVM code every design keeping R16–R31 in the same place
 * shares (the classification rule is the provider's, docs/model.md#findings). The cells meet
 * them one by one; the report lists each once, with every cell that met it and the explanation a
 * KVM developer needs when the project has written one up (EXPLANATIONS — words for a finding the
 * exploration found, never a source of verdicts).
 */
import { eventKind } from "../engine/event-key.js";
import { cellId } from "../matrix/cell.js";
import type { CellResult, CheckReport, CounterexampleReport, Finding, FindingExplanation } from "./check-report.js";

interface ExplanationEntry extends FindingExplanation {
  /**
   * Whether a finding is this one: its invariant, site, minimised event kinds, and the assumption
   * valuations it occurs under (departures from the defaults; {} is the defaults).
   */
  matches(f: { invariant: string; site?: string; kinds: readonly string[]; backend: string; assumptions: readonly Record<string, string>[] }): boolean;
}

/** Some valuation it occurs under sets this assumption to this value. */
const under = (f: { assumptions: readonly Record<string, string>[] }, name: string, value: string): boolean =>
  f.assumptions.some((a) => a[name] === value);
const seenByUapiOrGuest = (f: { invariant: string }): boolean => f.invariant === "uapi-truth" || f.invariant === "guest-integrity";

export const EXPLANATIONS: readonly ExplanationEntry[] = [
  {
    title: "INIT zeroes R16–R31 that KVM keeps in regs[]",
    kvm:
      "kvm_vcpu_reset() clears the whole vcpu->arch.regs[] array for INIT as well as for RESET; with R16–R31 in regs[] " +
      "an INIT therefore zeroes them, and KVM_GET_XSAVE reports zeros afterwards.",
    architecture:
      "INIT leaves XSAVE-managed state alone (the SDM's INIT column keeps x87/SSE/AVX state; the APX spec has R16–R31 " +
      "follow the XSTATE conventions), so after INIT a guest should still find its R16–R31.",
    function: "arch/x86/kvm/x86.c kvm_vcpu_reset (init_event = true)",
    sources: ["docs/facts.md#apx-init-reset", "docs/facts.md#kvm-reg-enum"],
    severity:
      "low for today's guests — an INIT of a running vCPU is an INIT IPI (SIPI sequence), after which the OS reloads its " +
      "registers — but a guest that parks state in R16–R31 across INIT (firmware, a hypervisor in L1) would lose it",
    doc: "docs/findings/init-zeroes-egprs.md",
    // Seen through KVM_GET_XSAVE/migration (uapi-truth) or by the guest itself (guest-integrity).
    matches: (f) => seenByUapiOrGuest(f) && f.kinds.includes("init"),
  },
  {
    title: "RESET zeroes R16–R31 that KVM keeps in regs[] (matters only if RESET is to keep them)",
    kvm: "kvm_vcpu_reset() clears the whole vcpu->arch.regs[] array on RESET; with R16–R31 in regs[] they read 0 afterwards.",
    architecture:
      "After RESET, XSAVE-managed state is in its init state, and the APX spec has R16–R31 follow the XSTATE conventions: " +
      "zeros, which is what KVM gives. It differs only under the other reading the model keeps open, that RESET leaves " +
      "R16–R31 as they were (egprResetValue=unchanged).",
    function: "arch/x86/kvm/x86.c kvm_vcpu_reset (init_event = false)",
    sources: ["docs/facts.md#apx-init-reset", "docs/facts.md#kvm-reg-enum"],
    severity: "none under the SDM's RESET state; reported because the model cannot rule the other reading out",
    matches: (f) => seenByUapiOrGuest(f) && f.kinds.includes("reset"),
  },
  {
    title: "Clearing XCR0.APX leaves R16–R31 in regs[] (matters only if the hardware zeroes them)",
    kvm:
      "KVM_SET_XCRS and an intercepted guest XSETBV (__kvm_set_xcr) record the new XCR0 and nothing else; with R16–R31 in " +
      "regs[], nothing zeroes them when XCR0.APX goes from 1 to 0, so KVM_GET_XSAVE, a migration and the guest after it " +
      "re-enables APX see the old values.",
    architecture:
      "Unsettled: the APX specification as quoted keeps the registers (inaccessible) while XCR0.APX is clear, which is what " +
      "KVM gives; if the hardware instead zeroes them (xcr0ApxDisable=clear), KVM would have to zero regs[16..31] itself.",
    function: "arch/x86/kvm/x86.c __kvm_set_xcr (from KVM_SET_XCRS and handle_xsetbv)",
    sources: ["docs/facts.md#apx-xcr0-disable", "docs/facts.md#xcr0-rules"],
    severity: "none under the specification's reading; stale values become visible to the guest and to migration if clearing XCR0.APX zeroes R16–R31",
    matches: (f) => seenByUapiOrGuest(f) && under(f, "xcr0ApxDisable", "clear") && (f.kinds.includes("set-xcrs") || f.kinds.includes("guest-xsetbv")),
  },
  {
    title: "KVM_SET_XSAVE without XSTATE_BV[19] leaves R16–R31 as they were (matters only if userspace expects zeros)",
    kvm:
      "With R16–R31 in regs[], KVM_SET_XSAVE copies component 19 into regs[16..31] only when XSTATE_BV[19] is set (the " +
      "series as queued); an image without it leaves them as they were.",
    architecture:
      "XRSTOR, and KVM_SET_XSAVE for every other component (copy_uabi_to_xstate), put an absent component in its init " +
      "state: zeros. Which of the two userspace may rely on is unsettled (setXsaveApxAbsent).",
    function: "arch/x86/kvm/x86.c kvm_vcpu_ioctl_x86_set_xsave (APX series v4)",
    sources: ["docs/facts.md#apx-uapi-set-absent"],
    severity: "low: only a VMM that restores an image without component 19 and expects zeros notices; a migration stream carries the component",
    matches: (f) => f.invariant === "uapi-truth" && under(f, "setXsaveApxAbsent", "init-zeros") && f.kinds.includes("set-xsave"),
  },
  {
    title: "A -mapxf host runs C code under the guest's XCR0",
    kvm:
      "Between loading the guest XCR0 (kvm_load_xfeatures) and restoring the host's, vcpu_enter_guest runs C: the guest " +
      "PKRU load, vmx_vcpu_run, the fastpath, the NMI handler after VM-exit.",
    architecture: "With XCR0.APX=0 every instruction that names R16–R31 raises #UD; a kernel built with -mapxf uses them in any C function.",
    function: "arch/x86/kvm/x86.c vcpu_enter_guest",
    sources: ["docs/facts.md#host-kernel-apx", "docs/facts.md#design-hazards"],
    severity: "none today (kernels are built with -mno-apxf); a blocker for a -mapxf kernel unless the XCR0 switch moves into asm or hardware",
    matches: (f) => f.invariant === "apxf-c-needs-apx",
  },
];

/** Event kinds of a counterexample, in order. */
const kinds = (ce: CounterexampleReport): string[] => ce.events.map(eventKind);

/**
 * Gathers the cells' finding instances into the report's findings (one per invariant, site and
 * minimised event kinds), replacing each cell's instances by finding ids. Cells come in matrix order,
 * so ids (F1, F2…) are stable for a given matrix.
 */
export function collectFindings(cells: CellResult[], egprHomeOf: (design: string) => string | undefined): Finding[] {
  const byKey = new Map<string, Finding>();
  for (const cell of cells) {
    const instances = cell.findingInstances ?? [];
    delete cell.findingInstances;
    const ids: string[] = [];
    const perCell = new Map<Finding, Set<string>>();
    for (const inst of instances) {
      const ce = inst.report;
      const home = egprHomeOf(cell.design);
      const explanation = EXPLANATIONS.find((x) =>
        x.matches({ invariant: ce.invariant, ...(ce.site ? { site: ce.site } : {}), kinds: kinds(ce), backend: cell.backend, assumptions: inst.assumptions }),
      );
      // One finding per explained cause (however many places observe it), else per invariant, site and event kinds.
      const key = explanation ? `${home}|${explanation.title}` : `${home}|${ce.invariant}|${ce.site ?? ""}|${kinds(ce).join(",")}`;
      let f = byKey.get(key);
      if (!f) {
        f = {
          id: `F${byKey.size + 1}`,
          invariant: ce.invariant,
          message: ce.message,
          counterexample: ce,
          cells: [],
          assumptions: [],
          observedAt: [],
          everyValuation: true,
        };
        if (ce.site !== undefined) f.site = ce.site;
        if (home !== undefined) f.egprHome = home;
        if (explanation) {
          const { matches: _m, ...words } = explanation;
          f.explanation = words;
        }
        byKey.set(key, f);
      } else if (ce.events.length < f.counterexample.events.length) {
        f.counterexample = ce;
        f.message = ce.message;
        f.invariant = ce.invariant;
        if (ce.site !== undefined) f.site = ce.site;
      }
      const seenAt = `${ce.invariant}${ce.site ? ` at ${ce.site}` : ""}`;
      if (!f.observedAt.includes(seenAt)) f.observedAt.push(seenAt);
      const mine = perCell.get(f) ?? new Set<string>();
      for (const a of inst.assumptions) mine.add(JSON.stringify(a));
      perCell.set(f, mine);
      if (!f.cells.includes(cellId(cell))) f.cells.push(cellId(cell));
      for (const a of inst.assumptions) if (!f.assumptions.some((x) => JSON.stringify(x) === JSON.stringify(a))) f.assumptions.push(a);
      ids.push(f.id);
    }
    // A finding that some valuation this cell swept avoids rests on the assumptions.
    for (const [f, vals] of perCell) if (vals.size < (cell.assumptionVerdicts?.length ?? 1)) f.everyValuation = false;
    if (ids.length > 0) cell.findings = [...new Set(ids)];
  }
  return [...byKey.values()];
}

/**
 * Under which assumption valuations a finding occurs, in words: "every valuation swept", "the
 * defaults", "every valuation but egprInitValue=zeros", or the list (whichever is shorter).
 */
export function findingValuationText(f: Finding, report: CheckReport): string {
  const fmt = (a: Record<string, string>) => (Object.keys(a).length === 0 ? "the defaults" : Object.entries(a).map(([k, v]) => `${k}=${v}`).join(" & "));
  const swept = report.cells.find((c) => c.assumptionVerdicts)?.assumptionVerdicts?.map((v) => v.assumptions);
  if (!swept) return "the default assumptions";
  const key = (a: Record<string, string>) => JSON.stringify(Object.entries(a).sort());
  const met = new Set(f.assumptions.map(key));
  const absent = swept.filter((a) => !met.has(key(a)));
  if (absent.length === 0) return "every assumption valuation swept";
  if (absent.length < f.assumptions.length) return `every valuation but ${absent.map(fmt).join(", ")}`;
  return f.assumptions.map(fmt).join("; ");
}
