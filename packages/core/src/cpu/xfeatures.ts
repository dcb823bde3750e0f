/**
 * XSAVE state-component numbers (docs/facts.md#xfeatures), named as Linux's `enum xfeature` names them.
 * The per-component facts (size, offset, alignment, user/supervisor) live in the one XSAVE component
 * table, xsave-components.ts; this file only names the numbers and masks.
 */
export const XFEATURE = {
  FP: 0,
  SSE: 1,
  YMM: 2,
  BNDREGS: 3,
  BNDCSR: 4,
  OPMASK: 5,
  ZMM_Hi256: 6,
  Hi16_ZMM: 7,
  PT: 8,
  PKRU: 9,
  PASID: 10,
  CET_USER: 11,
  CET_KERNEL: 12,
  LBR: 15,
  XTILE_CFG: 17,
  XTILE_DATA: 18,
  APX: 19,
} as const;
export type XFeatureName = keyof typeof XFEATURE;
export type XFeatureNumber = (typeof XFEATURE)[XFeatureName];

export const xfeatureMask = (n: number): bigint => 1n << BigInt(n);

export const XFEATURE_MASK = {
  FP: xfeatureMask(XFEATURE.FP),
  SSE: xfeatureMask(XFEATURE.SSE),
  YMM: xfeatureMask(XFEATURE.YMM),
  BNDREGS: xfeatureMask(XFEATURE.BNDREGS),
  BNDCSR: xfeatureMask(XFEATURE.BNDCSR),
  OPMASK: xfeatureMask(XFEATURE.OPMASK),
  ZMM_Hi256: xfeatureMask(XFEATURE.ZMM_Hi256),
  Hi16_ZMM: xfeatureMask(XFEATURE.Hi16_ZMM),
  PT: xfeatureMask(XFEATURE.PT),
  PKRU: xfeatureMask(XFEATURE.PKRU),
  PASID: xfeatureMask(XFEATURE.PASID),
  CET_USER: xfeatureMask(XFEATURE.CET_USER),
  CET_KERNEL: xfeatureMask(XFEATURE.CET_KERNEL),
  LBR: xfeatureMask(XFEATURE.LBR),
  XTILE_CFG: xfeatureMask(XFEATURE.XTILE_CFG),
  XTILE_DATA: xfeatureMask(XFEATURE.XTILE_DATA),
  APX: xfeatureMask(XFEATURE.APX),
} as const;

/** FP | SSE: the legacy region every XSAVE image carries. */
export const XFEATURE_MASK_FPSSE = XFEATURE_MASK.FP | XFEATURE_MASK.SSE;
/** The three AVX-512 components, which XCR0 must enable together. */
export const XFEATURE_MASK_AVX512 = XFEATURE_MASK.OPMASK | XFEATURE_MASK.ZMM_Hi256 | XFEATURE_MASK.Hi16_ZMM;
export const XFEATURE_MASK_MPX = XFEATURE_MASK.BNDREGS | XFEATURE_MASK.BNDCSR;
export const XFEATURE_MASK_XTILE = XFEATURE_MASK.XTILE_CFG | XFEATURE_MASK.XTILE_DATA;

/** Whether XCR0 (or any feature bitmap) enables APX, i.e. R16–R31 are accessible (docs/facts.md#apx-access-gate). */
export const hasApx = (xcr0: bigint): boolean => (xcr0 & XFEATURE_MASK.APX) !== 0n;
