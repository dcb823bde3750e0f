import type { RealStep } from "./real-scenario.js";

/**
 * The known host quirks of kvm_pvm (FACTS.md §8): where the real KVM on these machines differs from
 * upstream VMX/SVM. The model never imitates them; the diff harness uses this table to label a
 * difference "explained by quirk X" instead of failing. Each entry says which differences it
 * explains, as a predicate over the step and the observation key, with what the scenario did before.
 */
export interface QuirkContext {
  readonly step: RealStep;
  readonly key: string;
  /** A set-cpuid step with a narrowed xcr0Mask came before this step. */
  readonly cpuidRestricted: boolean;
  /** No set-cpuid step came before this step (the vCPU's CPUID is empty on upstream KVM). */
  readonly noCpuid: boolean;
}

export interface HostQuirk {
  readonly name: string;
  /** What differs, one line. */
  readonly differs: string;
  readonly facts: string;
  explains(ctx: QuirkContext): boolean;
}

const isXgetbv = (s: RealStep, cpl: 0 | 3): boolean => s.kind === "run" && s.spec.program === "xgetbv" && s.spec.cpl === cpl;
const xcr0Visible = (key: string): boolean =>
  key === "errno" || key === "xcr0" || key.startsWith("exit.") || key === "fault-vector" || key.startsWith("xsave.") || key.startsWith("regs.");

export const HOST_QUIRKS: readonly HostQuirk[] = [
  {
    name: "cpuid2-host-leaves",
    differs: "KVM_SET_CPUID2 leaves 1 and 0xD are replaced with host values: the guest reads host leaves, and a narrowed guest XCR0 mask does not restrict XCR0",
    facts: "FACTS.md §8, first quirk",
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
    facts: "FACTS.md §8, second quirk",
    explains: (c) => c.step.kind === "supported-cpuid" && c.step.leaf === 1 && c.key === "ecx",
  },
  {
    name: "emulated-cpl0-xgetbv",
    differs: "CPL0 guest code runs in KVM's emulator, where XGETBV ends in KVM_EXIT_INTERNAL_ERROR",
    facts: "FACTS.md §8, third quirk",
    explains: (c) => isXgetbv(c.step, 0) && (c.key.startsWith("exit.") || c.key.startsWith("regs.") || c.key === "fault-vector"),
  },
  {
    name: "cpl3-xgetbv-host-xcr0",
    differs: "64-bit CPL3 guest code runs natively and its XGETBV returns the host XCR0",
    facts: "FACTS.md §8, third quirk",
    explains: (c) => isXgetbv(c.step, 3) && (c.key === "regs.rax" || c.key === "regs.rdx"),
  },
  {
    name: "get-fpu-mxcsr-zero",
    differs: "KVM_GET_FPU reports MXCSR = 0",
    facts: "FACTS.md §8, fourth quirk",
    explains: (c) => c.step.kind === "get-fpu" && c.key === "mxcsr",
  },
  {
    name: "segments-verbatim",
    differs: "kvm_segment fields round-trip verbatim (no VMX normalisation)",
    facts: "FACTS.md §8, fourth quirk",
    explains: (c) => c.step.kind === "get-sregs" && /^sregs\.(cs|ds|es|fs|gs|ss|tr|ldt)\./.test(c.key),
  },
  {
    name: "set-sregs-osxsave",
    differs: "KVM_SET_SREGS accepts CR4.OSXSAVE without guest CPUID XSAVE",
    facts: "FACTS.md §8, fourth quirk",
    // the guest programs' loader sets CR4.OSXSAVE: with an empty CPUID upstream rejects it, and the run differs
    explains: (c) => c.noCpuid && (c.step.kind === "run" || c.step.kind === "sync-regs"),
  },
];

export function quirkByName(name: string): HostQuirk | undefined {
  return HOST_QUIRKS.find((q) => q.name === name);
}
