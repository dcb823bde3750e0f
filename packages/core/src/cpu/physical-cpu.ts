import type { ModelOptions } from "../model-options.js";
import { EGPR_FIRST, NR_GPRS } from "./gpr.js";
import { Tag, type ProvenanceTag } from "./provenance.js";
import { XFEATURE_MASK, hasApx } from "./xfeatures.js";

/** Operating mode of the logical processor; R16–R31 exist only in long64 (FACTS.md §1 access gate). */
export type CpuMode = "real" | "protected" | "compat" | "long64";

/**
 * The architectural state of one logical processor that kvmx tracks (DESIGN.md "Physical CPU"):
 * R0–R31 with a provenance tag each, RIP, the live XCR0/XSS/PKRU, CR4.OSXSAVE, mode and CPL.
 * Plain typed arrays so that copying and hashing stay cheap for the checker.
 */
export class PhysicalCpu {
  readonly gpr = new BigUint64Array(NR_GPRS);
  readonly gprTag = new Uint16Array(NR_GPRS);
  rip = 0n;
  rflags = 0x2n;
  /** The XCR0 currently loaded in hardware (XSETBV changes it; VM-entry does not, except hw-xcr0-switch/SEV-ES). */
  xcr0 = 0x1n;
  xss = 0n;
  pkru = 0;
  cr4Osxsave = true;
  mode: CpuMode = "long64";
  cpl = 0;
  /**
   * XINUSE (SDM 13.6): components the CPU knows to be outside their init state. XSAVE writes
   * XSTATE_BV[i] = XINUSE[i] for requested components; an all-zero component may still be in use.
   */
  xinuse = 0x1n;

  constructor(init?: { xcr0?: bigint; tag?: ProvenanceTag }) {
    if (init?.xcr0 !== undefined) this.xcr0 = init.xcr0;
    this.gprTag.fill(init?.tag ?? Tag.init);
  }

  clone(): PhysicalCpu {
    const c = new PhysicalCpu();
    c.gpr.set(this.gpr);
    c.gprTag.set(this.gprTag);
    c.rip = this.rip;
    c.rflags = this.rflags;
    c.xcr0 = this.xcr0;
    c.xss = this.xss;
    c.pkru = this.pkru;
    c.cr4Osxsave = this.cr4Osxsave;
    c.mode = this.mode;
    c.cpl = this.cpl;
    c.xinuse = this.xinuse;
    return c;
  }

  setGpr(index: number, value: bigint, tag: ProvenanceTag): void {
    this.gpr[index] = BigInt.asUintN(64, value);
    this.gprTag[index] = tag;
  }

  /**
   * What a successful XSETBV does to this CPU (the caller has checked the value): XCR0 changes and,
   * when XCR0[19] goes 1→0, R16–R31 are kept or zeroed per ASSUMPTIONS.xcr0ApxDisable (FACTS.md §1).
   */
  loadXcr0(value: bigint, xcr0ApxDisable: ModelOptions["xcr0ApxDisable"]): void {
    const wasApx = hasApx(this.xcr0);
    this.xcr0 = value;
    if (wasApx && !hasApx(value) && xcr0ApxDisable === "clear") {
      for (let r = EGPR_FIRST; r < NR_GPRS; r++) this.setGpr(r, 0n, Tag.init);
      this.xinuse &= ~XFEATURE_MASK.APX;
    }
  }
}
