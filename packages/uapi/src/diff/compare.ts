import type { SourceLocation } from "@kvmx/core";
import type { HostQuirk, PendingModelBug } from "./host-quirks.js";
import type { StepObservation } from "./observe.js";
import type { RealScenario } from "./real-scenario.js";

/** One observable difference between the two kernels at one step. */
export interface Difference {
  readonly step: number;
  readonly kind: string;
  readonly at: SourceLocation;
  readonly key: string;
  /** The first kernel's value (the model), or undefined when it did not observe this key. */
  readonly left: string | undefined;
  /** The second kernel's value (real KVM, or a second model). */
  readonly right: string | undefined;
  /** The host quirk that explains it, when one does. */
  readonly quirk?: string;
  /** The pending model bug it is, when it is a known one (not explained: the model is wrong here). */
  readonly pendingBug?: string;
}

export interface DiffReport {
  readonly scenario: string;
  readonly file: string;
  readonly left: string;
  readonly right: string;
  readonly steps: number;
  readonly differences: readonly Difference[];
  /** Differences neither a quirk nor a known pending model bug explains: any of these fails `kvmx diff`. */
  readonly unexplained: number;
  /** Differences that are known model bugs awaiting a fix. */
  readonly pending: number;
  /** The quirks the classification was allowed to use. */
  readonly quirks: readonly string[];
}

/**
 * Compares two observation lists key by key, step by step. A difference is labelled with the first
 * quirk of `quirks` that explains it; pass [] to count every difference (model vs model).
 */
export function compareObservations(
  scenario: RealScenario,
  left: { name: string; obs: readonly StepObservation[] },
  right: { name: string; obs: readonly StepObservation[] },
  quirks: readonly HostQuirk[],
  pendingBugs: readonly PendingModelBug[] = [],
): DiffReport {
  const differences: Difference[] = [];
  let cpuidRestricted = false;
  let noCpuid = true;
  scenario.steps.forEach((step, i) => {
    const a = left.obs[i]?.obs ?? {};
    const b = right.obs[i]?.obs ?? {};
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const key of keys) {
      if (a[key] === b[key]) continue;
      const ctx = { step, key, cpuidRestricted, noCpuid, before: scenario.steps.slice(0, i), model: a[key], kernel: b[key] };
      const q = quirks.find((x) => x.explains(ctx));
      const p = q ? undefined : pendingBugs.find((x) => x.explains(ctx));
      differences.push({ step: i, kind: step.kind, at: step.at, key, left: a[key], right: b[key], ...(q ? { quirk: q.name } : {}), ...(p ? { pendingBug: p.name } : {}) });
    }
    if (step.kind === "set-cpuid") {
      noCpuid = false;
      cpuidRestricted = step.xcr0Mask !== undefined;
    }
  });
  return {
    scenario: scenario.name,
    file: scenario.file,
    left: left.name,
    right: right.name,
    steps: scenario.steps.length,
    differences,
    unexplained: differences.filter((d) => d.quirk === undefined && d.pendingBug === undefined).length,
    pending: differences.filter((d) => d.pendingBug !== undefined).length,
    quirks: quirks.map((q) => q.name),
  };
}
