/**
 * THE XSAVE state-component table (QEMU's x86_ext_save_areas, Linux's xstate tables, as one list):
 * number, name, default size and standard-format offset (docs/facts.md#xfeatures; a CPU profile's leaf 0xD
 * overrides them), compacted-format 64-byte alignment, user vs supervisor (XCR0 vs IA32_XSS), and
 * the CPUID feature the component depends on.
 */
import { XFEATURE, type XFeatureName } from "./xfeatures.js";

export interface XsaveComponentSpec {
  readonly index: number;
  readonly name: XFeatureName;
  readonly description: string;
  /** Size in bytes (CPUID.(0xD,i).EAX); components 0 and 1 describe their slices of the legacy area. */
  readonly size: number;
  /** Standard-format offset (CPUID.(0xD,i).EBX); undefined for supervisor components (compacted only). */
  readonly standardOffset: number | undefined;
  /** CPUID.(0xD,i).ECX[1]: aligned to 64 bytes in the compacted format. */
  readonly align64: boolean;
  /** Supervisor state (CPUID.(0xD,i).ECX[0]), enabled through IA32_XSS rather than XCR0. */
  readonly supervisor: boolean;
  readonly enabledBy: "xcr0" | "xss";
  /** The CPUID bit that enumerates the feature the component holds. */
  readonly cpuidDependency: string;
}

const c = (s: XsaveComponentSpec): XsaveComponentSpec => s;

export const XSAVE_COMPONENTS: readonly XsaveComponentSpec[] = [
  c({ index: XFEATURE.FP, name: "FP", description: "x87 floating point registers", size: 160, standardOffset: 0, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.1:EDX.FPU[0]" }),
  c({ index: XFEATURE.SSE, name: "SSE", description: "SSE registers (MXCSR, XMM0-15)", size: 256, standardOffset: 160, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.1:EDX.SSE[25]" }),
  c({ index: XFEATURE.YMM, name: "YMM", description: "AVX upper halves of YMM0-15", size: 256, standardOffset: 576, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.1:ECX.AVX[28]" }),
  c({ index: XFEATURE.BNDREGS, name: "BNDREGS", description: "MPX bound registers BND0-3", size: 64, standardOffset: 960, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.(7,0):EBX.MPX[14]" }),
  c({ index: XFEATURE.BNDCSR, name: "BNDCSR", description: "MPX BNDCFGU and BNDSTATUS", size: 64, standardOffset: 1024, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.(7,0):EBX.MPX[14]" }),
  c({ index: XFEATURE.OPMASK, name: "OPMASK", description: "AVX-512 opmask registers k0-7", size: 64, standardOffset: 1088, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.(7,0):EBX.AVX512F[16]" }),
  c({ index: XFEATURE.ZMM_Hi256, name: "ZMM_Hi256", description: "AVX-512 upper halves of ZMM0-15", size: 512, standardOffset: 1152, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.(7,0):EBX.AVX512F[16]" }),
  c({ index: XFEATURE.Hi16_ZMM, name: "Hi16_ZMM", description: "AVX-512 ZMM16-31", size: 1024, standardOffset: 1664, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.(7,0):EBX.AVX512F[16]" }),
  c({ index: XFEATURE.PT, name: "PT", description: "Processor Trace MSRs", size: 128, standardOffset: undefined, align64: false, supervisor: true, enabledBy: "xss", cpuidDependency: "CPUID.(7,0):EBX.INTEL_PT[25]" }),
  c({ index: XFEATURE.PKRU, name: "PKRU", description: "protection keys rights register", size: 8, standardOffset: 2688, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.(7,0):ECX.PKU[3]" }),
  c({ index: XFEATURE.PASID, name: "PASID", description: "PASID state (IA32_PASID)", size: 8, standardOffset: undefined, align64: false, supervisor: true, enabledBy: "xss", cpuidDependency: "CPUID.(7,0):ECX.ENQCMD[29]" }),
  c({ index: XFEATURE.CET_USER, name: "CET_USER", description: "CET user state (IA32_U_CET, IA32_PL3_SSP)", size: 16, standardOffset: undefined, align64: false, supervisor: true, enabledBy: "xss", cpuidDependency: "CPUID.(7,0):ECX.CET_SS[7]" }),
  c({ index: XFEATURE.CET_KERNEL, name: "CET_KERNEL", description: "CET supervisor shadow stack pointers", size: 24, standardOffset: undefined, align64: false, supervisor: true, enabledBy: "xss", cpuidDependency: "CPUID.(7,0):ECX.CET_SS[7]" }),
  c({ index: XFEATURE.LBR, name: "LBR", description: "architectural LBR MSRs", size: 808, standardOffset: undefined, align64: false, supervisor: true, enabledBy: "xss", cpuidDependency: "CPUID.(7,0):EDX.ARCH_LBR[19]" }),
  c({ index: XFEATURE.XTILE_CFG, name: "XTILE_CFG", description: "AMX tile configuration (TILECFG)", size: 64, standardOffset: 2752, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.(7,0):EDX.AMX_TILE[24]" }),
  c({ index: XFEATURE.XTILE_DATA, name: "XTILE_DATA", description: "AMX tile data TMM0-7", size: 8192, standardOffset: 2816, align64: true, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.(7,0):EDX.AMX_TILE[24]" }),
  // docs/facts.md#apx-xsave-component: 128 bytes at 960 (secondary: ASSUMPTIONS.apxStandardOffset);
  // compacted alignment (uncertain: apxCompactedAlign64).
  c({ index: XFEATURE.APX, name: "APX", description: "APX extended GPRs R16-R31", size: 128, standardOffset: 960, align64: false, supervisor: false, enabledBy: "xcr0", cpuidDependency: "CPUID.(7,1):EDX.APX_F[21]" }),
];

const BY_INDEX = new Map(XSAVE_COMPONENTS.map((s) => [s.index, s]));

export const xsaveComponent = (index: number): XsaveComponentSpec | undefined => BY_INDEX.get(index);

export const componentName = (index: number): string => BY_INDEX.get(index)?.name ?? `component${index}`;

/** The legacy region (x87 + SSE, FXSAVE layout) and the XSAVE header: fixed for every format. */
export const XSAVE_LEGACY_SIZE = 512;
export const XSAVE_HEADER_OFFSET = 512;
export const XSAVE_HEADER_SIZE = 64;
/** Where the extended region starts in both formats. */
export const XSAVE_EXTENDED_OFFSET = 576;
/** KVM_GET_XSAVE's fixed image size (docs/facts.md#kvm-get-xsave). */
export const KVM_XSAVE_SIZE = 4096;
