/**
 * The uncertain facts (docs/facts.md#assumptions) as named, switchable assumptions. Nothing in the
 * model may silently pick one alternative: it reads the choice from a ModelOptions value, and the
 * checker runs every alternative (the sweep). One table; each alternative says where it comes from.
 */
export interface AssumptionSpec<T extends string> {
  readonly name: string;
  readonly alternatives: readonly T[];
  readonly default: T;
  readonly tag: "[?]" | "[2nd]";
  /** The fact in question, one line. */
  readonly fact: string;
  /** Where the fact is written up (docs/facts.md anchor). */
  readonly doc: string;
  /** Why each alternative is plausible: the source that supports it. */
  readonly sources: { readonly [K in T]: string };
  /**
   * "run": read while events run (the checker sweeps it and records which runs read it);
   * "config": read when a machine is built (CPU profiles' leaf 0xD), fixed for a run.
   */
  readonly scope: "run" | "config";
}

function spec<const T extends string>(s: AssumptionSpec<T>): AssumptionSpec<T> {
  return s;
}

export const ASSUMPTIONS = {
  apxCompactedAlign64: spec({
    name: "apxCompactedAlign64",
    alternatives: ["no", "yes"],
    default: "no",
    tag: "[?]",
    fact: "CPUID.(0xD,19):ECX[1] — compacted-format 64-byte alignment of the APX component",
    doc: "docs/facts.md#apx-xsave-component",
    sources: {
      no: "the APX spec's state-component table gives no alignment requirement for component 19",
      yes: "components since AVX-512 mostly set ECX[1]; a CPU could still enumerate it",
    },
    scope: "config",
  }),
  apxStandardOffset: spec({
    name: "apxStandardOffset",
    alternatives: ["960"],
    default: "960",
    tag: "[2nd]",
    fact: "APX component standard-format offset 0x3C0 (CPUID.(0xD,19).EBX)",
    doc: "docs/facts.md#apx-xsave-component",
    sources: { "960": "APX spec as quoted in the KVM/QEMU APX series: the bytes MPX's components 3 and 4 used" },
    scope: "config",
  }),
  xcr0ApxDisable: spec({
    name: "xcr0ApxDisable",
    alternatives: ["keep", "clear"],
    default: "keep",
    tag: "[2nd]",
    fact: "clearing XCR0[19] keeps R16–R31 contents; re-enabling exposes the kept values",
    doc: "docs/facts.md#apx-xcr0-disable",
    sources: {
      keep: "APX spec (as quoted in the 2026 discussion): disabling keeps the registers, inaccessible",
      clear: "what an implementation that treats XCR0.APX 1→0 like XRSTOR of the init state would do",
    },
    scope: "run",
  }),
  egprResetValue: spec({
    name: "egprResetValue",
    alternatives: ["zeros", "unchanged"],
    default: "zeros",
    tag: "[?]",
    fact: "after vCPU RESET R16–R31 are 0 (component init state)",
    doc: "docs/facts.md#apx-init-reset",
    sources: {
      zeros: "SDM power-up/RESET state: XSAVE-managed state is in its init state; the APX spec follows the XSTATE conventions",
      unchanged: "a KVM RESET path that does not touch the EGPR home (only regs[] is memset)",
    },
    scope: "run",
  }),
  setXsaveApxAbsent: spec({
    name: "setXsaveApxAbsent",
    alternatives: ["leave-unchanged", "init-zeros"],
    default: "leave-unchanged",
    tag: "[?]",
    fact: "after KVM_SET_XSAVE with XSTATE_BV[19]=0 the guest should see its old R16–R31 (KVM leaves regs[16..31]) or zeros (XRSTOR semantics: absent = init)",
    doc: "docs/facts.md#apx-uapi-set-absent",
    sources: {
      "leave-unchanged": "the KVM APX series as queued (v4) and Chang's diff: SET copies component 19 only when XSTATE_BV[19]=1",
      "init-zeros": "XRSTOR and copy_uabi_to_xstate put every absent component in its init state",
    },
    scope: "run",
  }),
  push2pop2Rules: spec({
    name: "push2pop2Rules",
    alternatives: ["as-documented"],
    default: "as-documented",
    tag: "[2nd]",
    fact: "PUSH2/POP2: RSP operand or equal POP2 operands #UD; unaligned stack #GP; #UD when XCR0.APX=0",
    doc: "docs/facts.md#push2-pop2",
    sources: { "as-documented": "APX spec PUSH2/POP2 pages as quoted by the binutils/LLVM APX patches" },
    scope: "run",
  }),
  tdxXfamApx: spec({
    name: "tdxXfamApx",
    alternatives: ["xfam-fixed-at-init"],
    default: "xfam-fixed-at-init",
    tag: "[2nd]",
    fact: "APX inside a TD is governed by XFAM[19], fixed when the TD is initialised",
    doc: "docs/facts.md#tdx-xfam",
    sources: { "xfam-fixed-at-init": "TDX module spec: XFAM is a TD attribute set by TDH.MNG.INIT" },
    scope: "run",
  }),
  msrImmEgprEncoding: spec({
    name: "msrImmEgprEncoding",
    alternatives: ["evex-map7"],
    default: "evex-map7",
    tag: "[2nd]",
    fact: "RDMSR/WRMSRNS imm with an EGPR use EVEX map 7 (62 P0 7F|7E 08 F6 /0 id), by analogy with URDMSR/UWRMSR imm",
    doc: "docs/facts.md#msr-imm",
    sources: { "evex-map7": "by analogy with URDMSR/UWRMSR imm32 (EVEX map 7) in the APX/USER_MSR encodings" },
    scope: "run",
  }),
  egprInitValue: spec({
    name: "egprInitValue",
    alternatives: ["kept", "zeros"],
    default: "kept",
    tag: "[?]",
    fact: "INIT leaves XSAVE-managed state alone, so R16–R31 keep their values (KVM's regs[] memset would zero them)",
    doc: "docs/facts.md#apx-init-reset",
    sources: {
      kept: "SDM INIT column: x87/SSE/AVX (XSAVE-managed) state is unchanged by INIT; sandpile's RESET/INIT table; the APX spec follows XSTATE conventions",
      zeros: "what kvm_vcpu_reset does to regs[] on INIT (memset), i.e. the behaviour a guest sees today",
    },
    scope: "run",
  }),
  tdxModuleHostEgprs: spec({
    name: "tdxModuleHostEgprs",
    alternatives: ["restored", "cleared"],
    default: "restored",
    tag: "[?]",
    fact: "TD exit (TDH.VP.ENTER return): host R16–R31 restored like the other SEAMCALL-preserved GPRs, or cleared to 0",
    doc: "docs/facts.md#tdx-module-egprs",
    sources: {
      restored: "the TDX module preserves the host's callee-state across TDH.VP.ENTER for the legacy GPRs",
      cleared: "the module zeroes registers it does not preserve; the spec predates APX",
    },
    scope: "run",
  }),
} as const;

export type AssumptionName = keyof typeof ASSUMPTIONS;
export type ModelOptions = {
  -readonly [K in AssumptionName]: (typeof ASSUMPTIONS)[K]["alternatives"][number];
};

export const ASSUMPTION_NAMES = Object.keys(ASSUMPTIONS) as AssumptionName[];

export const DEFAULT_MODEL_OPTIONS: ModelOptions = Object.fromEntries(
  Object.entries(ASSUMPTIONS).map(([k, v]) => [k, v.default]),
) as ModelOptions;

export function withOptions(overrides: Partial<ModelOptions> = {}): ModelOptions {
  return { ...DEFAULT_MODEL_OPTIONS, ...overrides };
}

// ---- the sweep --------------------------------------------------------------------------------

/**
 * The assumption valuations a check covers: the run-scope assumptions with more than one alternative
 * that the user did not pin, combined as "default" (one valuation), "each" (the default plus every
 * single deviation from it) or "all" (the full product). A valuation is an index; `options(i)` is
 * its ModelOptions. Valuation 0 is always the defaults (with the pins).
 */
export class AssumptionSpace {
  /** The swept assumptions, in ASSUMPTIONS order. */
  readonly swept: readonly AssumptionName[];
  readonly valuations: readonly ModelOptions[];

  constructor(pinned: Partial<ModelOptions> = {}, mode: "default" | "each" | "all" = "each") {
    const base = withOptions(pinned);
    this.swept =
      mode === "default"
        ? []
        : ASSUMPTION_NAMES.filter((n) => ASSUMPTIONS[n].scope === "run" && ASSUMPTIONS[n].alternatives.length > 1 && pinned[n] === undefined);
    const vals: ModelOptions[] = [base];
    if (mode === "each") {
      for (const n of this.swept) {
        for (const alt of ASSUMPTIONS[n].alternatives) if (alt !== base[n]) vals.push({ ...base, [n]: alt });
      }
    } else if (mode === "all") {
      for (const n of this.swept) {
        const more: ModelOptions[] = [];
        for (const v of vals) for (const alt of ASSUMPTIONS[n].alternatives) if (alt !== v[n]) more.push({ ...v, [n]: alt });
        vals.push(...more);
      }
    }
    if (vals.length > 31) throw new RangeError(`${vals.length} assumption valuations; at most 31 can be swept at once (pin some with --option)`);
    this.valuations = vals;
  }

  get size(): number {
    return this.valuations.length;
  }
  /** Bit i of the result is set when valuation i agrees with valuation `v` on every assumption in `consulted` (ASSUMPTION_NAMES bit indices). */
  agreeing(v: number, consulted: number): number {
    let mask = 0;
    const a = this.valuations[v]!;
    for (let i = 0; i < this.valuations.length; i++) {
      const b = this.valuations[i]!;
      let same = true;
      for (let k = 0; same && k < ASSUMPTION_NAMES.length; k++) {
        if ((consulted >>> k) & 1) same = a[ASSUMPTION_NAMES[k]!] === b[ASSUMPTION_NAMES[k]!];
      }
      if (same) mask |= 1 << i;
    }
    return mask;
  }
  /** The assumptions where valuation `v` differs from the defaults. */
  describe(v: number): Partial<ModelOptions> {
    const out: Record<string, string> = {};
    const a = this.valuations[v]!;
    const d = this.valuations[0]!;
    for (const n of ASSUMPTION_NAMES) if (a[n] !== d[n]) out[n] = a[n];
    return out as Partial<ModelOptions>;
  }
}

/**
 * A ModelOptions whose reads are recorded: the model reads assumptions only through its options
 * object, so after running an event `consulted` says which assumptions the run depended on (bit k
 * = ASSUMPTION_NAMES[k]). The checker uses it to share the work of every valuation that agrees on
 * them. `current` is the valuation being run.
 */
export interface RecordingOptions extends ModelOptions {
  current: ModelOptions;
  consulted: number;
}

export function recordingOptions(initial: ModelOptions): RecordingOptions {
  const o = new OptionsRecorder() as unknown as RecordingOptions;
  o.current = initial;
  return o;
}

/** A valuation's values in ASSUMPTION_NAMES order (cached per ModelOptions object). */
const valuesOf = new WeakMap<ModelOptions, readonly string[]>();

/**
 * The recorder behind `recordingOptions`: one getter per assumption on the prototype (the hot path
 * reads options on every site, so no per-object accessors and no keyed lookups), each setting its
 * bit in `consulted` and returning the value from the current valuation's array.
 */
class OptionsRecorder {
  consulted = 0;
  private vals: readonly string[] = [];
  private cur: ModelOptions | undefined;
  get current(): ModelOptions {
    return this.cur!;
  }
  set current(v: ModelOptions) {
    this.cur = v;
    let vals = valuesOf.get(v);
    if (!vals) valuesOf.set(v, (vals = ASSUMPTION_NAMES.map((n) => v[n])));
    this.vals = vals;
  }
}
ASSUMPTION_NAMES.forEach((name, k) => {
  const bit = 1 << k;
  Object.defineProperty(OptionsRecorder.prototype, name, {
    enumerable: true,
    get(this: { consulted: number; vals: readonly string[] }) {
      this.consulted |= bit;
      return this.vals[k];
    },
  });
});
