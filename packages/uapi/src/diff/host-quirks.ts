import type { CpuidEntry } from "@kvmx/core";
import type { HostDescription, HostKind } from "../host/host-description.js";
import type { RealStep } from "./real-scenario.js";

/**
 * Accepted differences, per kind of host: where the real KVM a comparison runs against differs from
 * what the model describes for a reason that is not a model bug — kvm_pvm's deviations from
 * upstream (docs/facts.md#host-quirks), or what an emulated CPU under kvm_amd cannot show. The model
 * never imitates them; the diff harness labels a difference "explained by quirk X" instead of
 * failing. Each entry says which differences it explains, as a predicate over the step and the
 * observation key, with what the scenario did before. Everything else must agree.
 */
export interface QuirkContext {
  readonly step: RealStep;
  readonly key: string;
  /** A set-cpuid step with a narrowed xcr0Mask came before this step. */
  readonly cpuidRestricted: boolean;
  /** No set-cpuid step came before this step (the vCPU's CPUID is empty on upstream KVM). */
  readonly noCpuid: boolean;
  /** The steps before this one, in order. */
  readonly before: readonly RealStep[];
  /** What the model showed for `key` and what the kernel showed (undefined when one did not observe it). */
  readonly model?: string;
  readonly kernel?: string;
}

export interface HostQuirk {
  readonly name: string;
  /** What differs, one line. */
  readonly differs: string;
  /** Where the fact is written down (a docs/facts.md anchor). */
  readonly facts: string;
  explains(ctx: QuirkContext): boolean;
}

/**
 * A difference that is the model's fault, in code this package does not own (core's vCPU
 * operations), recorded until it is fixed there: shown as a pending model bug, never as a quirk, and
 * the replay tests assert it is still there (so the entry goes when the fix lands).
 */
export interface PendingModelBug {
  readonly name: string;
  readonly differs: string;
  /** The kernel function whose behaviour the model gets wrong. */
  readonly kernelFunction: string;
  /** Where in kvmx the fix belongs. */
  readonly fixIn: string;
  /** Only against these kernels (default: every one). */
  appliesTo?(host: HostDescription, facts: { readonly supportedCpuid: readonly CpuidEntry[] }): boolean;
  explains(ctx: QuirkContext): boolean;
}

const isXgetbv = (s: RealStep, cpl: 0 | 3): boolean => s.kind === "run" && s.spec.program === "xgetbv" && s.spec.cpl === cpl;
const xcr0Visible = (key: string): boolean =>
  key === "errno" || key === "xcr0" || key.startsWith("exit.") || key === "fault-vector" || key.startsWith("xsave.") || key.startsWith("regs.");

/** kvm_pvm (a PVM-based KVM vendor module some of these machines serve /dev/kvm from). */
export const KVM_PVM_QUIRKS: readonly HostQuirk[] = [
  {
    name: "cpuid2-host-leaves",
    differs: "KVM_SET_CPUID2 leaves 1 and 0xD are replaced with host values: the guest reads host leaves, and a narrowed guest XCR0 mask does not restrict XCR0",
    facts: "docs/facts.md#host-quirks",
    explains: (c) =>
      // the guest's CPUID leaves 1 and 0xD are the host's
      (c.step.kind === "run" && c.step.spec.program === "cpuid" && (c.step.spec.leaf === 1 || c.step.spec.leaf === 0xd) && c.key.startsWith("regs.")) ||
      // XCR0 values a narrowed leaf 0xD should have refused are accepted
      (c.cpuidRestricted &&
        (c.step.kind === "set-xcrs" || c.step.kind === "get-xcrs" || (c.step.kind === "run" && c.step.spec.program === "xsetbv") || c.step.kind === "get-xsave" || c.step.kind === "get-xsave2") &&
        xcr0Visible(c.key)),
  },
  {
    name: "supported-cpuid-leaf1",
    differs: "KVM_GET_SUPPORTED_CPUID leaf 1 ECX lacks XSAVE/AVX while leaf 0xD advertises 0xe7",
    facts: "docs/facts.md#host-quirks",
    explains: (c) => c.step.kind === "supported-cpuid" && c.step.leaf === 1 && c.key === "ecx",
  },
  {
    name: "emulated-cpl0-xgetbv",
    differs: "CPL0 guest code runs in KVM's emulator, where XGETBV ends in KVM_EXIT_INTERNAL_ERROR",
    facts: "docs/facts.md#host-quirks",
    explains: (c) => isXgetbv(c.step, 0) && (c.key.startsWith("exit.") || c.key.startsWith("regs.") || c.key === "fault-vector"),
  },
  {
    name: "cpl3-xgetbv-host-xcr0",
    differs: "64-bit CPL3 guest code runs natively and its XGETBV returns the host XCR0",
    facts: "docs/facts.md#host-quirks",
    explains: (c) => isXgetbv(c.step, 3) && (c.key === "regs.rax" || c.key === "regs.rdx"),
  },
  {
    name: "segments-verbatim",
    differs: "kvm_segment fields round-trip verbatim (no VMX normalisation)",
    facts: "docs/facts.md#host-quirks",
    explains: (c) => c.step.kind === "get-sregs" && /^sregs\.(cs|ds|es|fs|gs|ss|tr|ldt)\./.test(c.key),
  },
  {
    name: "set-sregs-osxsave",
    differs: "KVM_SET_SREGS accepts CR4.OSXSAVE without guest CPUID XSAVE",
    facts: "docs/facts.md#host-quirks",
    // the guest programs' loader sets CR4.OSXSAVE: with an empty CPUID upstream rejects it, and the run differs
    explains: (c) => c.noCpuid && (c.step.kind === "run" || c.step.kind === "sync-regs"),
  },
];

/** The kvm_pvm table, under the name the first version of the harness gave it. */
export const HOST_QUIRKS = KVM_PVM_QUIRKS;

const isGuestXsetbv = (s: RealStep): boolean => s.kind === "run" && s.spec.program === "xsetbv";

/**
 * kvm_amd in a kernel running on QEMU's emulated CPU (`kvmx lab`): what QEMU's SVM emulation does
 * differently from an AMD processor. The kernel's KVM code is upstream's; these are the CPU's.
 */
export const EMULATED_KVM_AMD_QUIRKS: readonly HostQuirk[] = [
  {
    name: "tcg-xsetbv-not-intercepted",
    differs:
      "QEMU's SVM emulation has no XSETBV intercept: a guest XSETBV changes the emulated CPU's XCR0 directly, KVM never sees it, and the XCR0 KVM reports (and sizes CPUID 0xD.0 EBX by) stays as it was",
    facts: "docs/facts.md#tcg-kvm-amd",
    explains: (c) =>
      (isGuestXsetbv(c.step) || c.before.some(isGuestXsetbv)) &&
      (c.key === "xcr0" || (c.step.kind === "run" && c.step.spec.program === "cpuid" && c.step.spec.leaf === 0xd && c.key === "regs.rbx")),
  },
];

/** The accepted differences of each host kind; an unknown host accepts none. */
export const QUIRKS_BY_HOST_KIND: Readonly<Record<HostKind, readonly HostQuirk[]>> = {
  "kvm_amd on an emulated CPU": EMULATED_KVM_AMD_QUIRKS,
  kvm_pvm: KVM_PVM_QUIRKS,
  kvm_amd: [],
  kvm_intel: [],
  unknown: [],
};

export function quirkByName(name: string): HostQuirk | undefined {
  return Object.values(QUIRKS_BY_HOST_KIND)
    .flat()
    .find((q) => q.name === name);
}
