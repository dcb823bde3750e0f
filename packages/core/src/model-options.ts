/**
 * The uncertain facts of FACTS.md ([?] and [2nd]) as named, switchable assumptions. Nothing in the
 * model may silently pick one alternative: it reads the choice from a ModelOptions value, and the
 * checker can run every alternative. One table; each entry says where the fact comes from.
 */
export interface AssumptionSpec<T extends string> {
  readonly name: string;
  readonly alternatives: readonly T[];
  readonly default: T;
  readonly tag: "[?]" | "[2nd]";
  readonly fact: string;
}

function spec<const T extends string>(s: AssumptionSpec<T>): AssumptionSpec<T> {
  return s;
}

export const ASSUMPTIONS = {
  /** FACTS.md §1 "compacted format": does component 19 need 64-byte alignment in the compacted format? */
  apxCompactedAlign64: spec({
    name: "apxCompactedAlign64",
    alternatives: ["no", "yes"],
    default: "no",
    tag: "[?]",
    fact: "CPUID.(0xD,19):ECX[1] — compacted-format 64-byte alignment of the APX component",
  }),
  /** FACTS.md §1 "standard-format offset": 960, reusing MPX's bytes; the profile's leaf 0xD can override. */
  apxStandardOffset: spec({
    name: "apxStandardOffset",
    alternatives: ["960"],
    default: "960",
    tag: "[2nd]",
    fact: "APX component standard-format offset 0x3C0 (CPUID.(0xD,19).EBX)",
  }),
  /** FACTS.md §1 "XCR0[19] 1→0": are R16–R31 kept (inaccessible) or cleared when APX is disabled? */
  xcr0ApxDisable: spec({
    name: "xcr0ApxDisable",
    alternatives: ["keep", "clear"],
    default: "keep",
    tag: "[2nd]",
    fact: "clearing XCR0[19] keeps R16–R31 contents; re-enabling exposes the kept values",
  }),
  /** FACTS.md §1 "init / reset": R16–R31 after vCPU RESET. */
  egprResetValue: spec({
    name: "egprResetValue",
    alternatives: ["zeros", "unchanged"],
    default: "zeros",
    tag: "[?]",
    fact: "after vCPU RESET R16–R31 are 0 (component init state)",
  }),
  /** FACTS.md §6 "APX through the uAPI": KVM_SET_XSAVE with XSTATE_BV[19]=0. */
  setXsaveApxAbsent: spec({
    name: "setXsaveApxAbsent",
    alternatives: ["leave-unchanged", "init-zeros"],
    default: "leave-unchanged",
    tag: "[?]",
    fact: "KVM_SET_XSAVE with XSTATE_BV[19]=0: Chang's diff leaves regs[16..31]; XRSTOR semantics would zero them",
  }),
  /** FACTS.md §1 "PUSH2/POP2": the #UD/#GP rules come from a secondary source. */
  push2pop2Rules: spec({
    name: "push2pop2Rules",
    alternatives: ["as-documented"],
    default: "as-documented",
    tag: "[2nd]",
    fact: "PUSH2/POP2: RSP operand or equal POP2 operands #UD; unaligned stack #GP; #UD when XCR0.APX=0",
  }),
  /** FACTS.md §1 "TDX": the TD's XFAM[APX] decides APX inside a TD, fixed at TD init. */
  tdxXfamApx: spec({
    name: "tdxXfamApx",
    alternatives: ["xfam-fixed-at-init"],
    default: "xfam-fixed-at-init",
    tag: "[2nd]",
    fact: "APX inside a TD is governed by XFAM[19], fixed when the TD is initialised",
  }),
  /** FACTS.md §1 (encodings): RDMSR/WRMSRNS imm32 naming R16–R31. The VEX map-7 form (R0–R15) is verified. */
  msrImmEgprEncoding: spec({
    name: "msrImmEgprEncoding",
    alternatives: ["evex-map7"],
    default: "evex-map7",
    tag: "[2nd]",
    fact: "RDMSR/WRMSRNS imm with an EGPR use EVEX map 7 (62 P0 7F|7E 08 F6 /0 id), by analogy with URDMSR/UWRMSR imm",
  }),
  /** FACTS.md §1 "init / reset": R16–R31 after INIT (XSAVE-managed state is not touched by INIT). */
  egprInitValue: spec({
    name: "egprInitValue",
    alternatives: ["kept", "zeros"],
    default: "kept",
    tag: "[?]",
    fact: "INIT leaves XSAVE-managed state alone, so R16–R31 keep their values (KVM's regs[] memset would zero them)",
  }),
  /** FACTS.md §5 (not stated): what the TDX module leaves in R16–R31 after a TD exit when XFAM has APX. */
  tdxModuleHostEgprs: spec({
    name: "tdxModuleHostEgprs",
    alternatives: ["restored", "cleared"],
    default: "restored",
    tag: "[?]",
    fact: "TD exit (TDH.VP.ENTER return): host R16–R31 restored like the other SEAMCALL-preserved GPRs, or cleared to 0",
  }),
} as const;

export type AssumptionName = keyof typeof ASSUMPTIONS;
export type ModelOptions = {
  -readonly [K in AssumptionName]: (typeof ASSUMPTIONS)[K]["alternatives"][number];
};

export const DEFAULT_MODEL_OPTIONS: ModelOptions = Object.fromEntries(
  Object.entries(ASSUMPTIONS).map(([k, v]) => [k, v.default]),
) as ModelOptions;

export function withOptions(overrides: Partial<ModelOptions> = {}): ModelOptions {
  return { ...DEFAULT_MODEL_OPTIONS, ...overrides };
}
