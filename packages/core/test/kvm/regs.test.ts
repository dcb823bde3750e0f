import { describe, expect, test } from "vitest";
import { kvm_reg, NR_VCPU_GENERAL_PURPOSE_REGS, NR_VCPU_TOTAL_REGS, regLayout, maskNames } from "../../src/kvm/regs.js";

describe("enum kvm_reg (docs/facts.md#kvm-reg-enum)", () => {
  test("POST values", () => {
    expect(kvm_reg.VCPU_REG_RAX).toBe(0);
    expect(kvm_reg.VCPU_REG_RSP).toBe(4);
    expect(kvm_reg.VCPU_REG_R15).toBe(15);
    expect(kvm_reg.VCPU_REG_RIP).toBe(16);
    expect(kvm_reg.VCPU_REG_PDPTR).toBe(17);
    expect(kvm_reg.VCPU_REG_CR3).toBe(19);
    expect(kvm_reg.VCPU_REG_EXIT_INFO_2).toBe(24);
    expect(NR_VCPU_GENERAL_PURPOSE_REGS).toBe(16);
    expect(NR_VCPU_TOTAL_REGS).toBe(25);
    const post = regLayout();
    expect([post.RIP, post.PDPTR, post.CR0, post.CR3, post.CR4, post.RFLAGS, post.SEGMENTS, post.EXIT_INFO_1, post.EXIT_INFO_2]).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24]);
    expect(post.nrTotal).toBe(25);
    expect(post.allMask).toBe((1n << 25n) - 1n);
  });

  test("EGPRs in regs[] (the APX demo): R16..R31 = 16..31, RIP = 32, 41 registers", () => {
    const l = regLayout({ egprsInRegs: true });
    expect(l.nrGprs).toBe(32);
    expect(l.RIP).toBe(32);
    expect(l.EXIT_INFO_2).toBe(40);
    expect(l.nrTotal).toBe(41);
    expect(l.name(16)).toBe("VCPU_REG_R16");
    expect(l.name(32)).toBe("VCPU_REG_RIP");
  });

  test("PRE: RIP in regs[16] (raw limit 17), VCPU_EXREG_* names, u32 masks", () => {
    const pre = regLayout({ pre: true });
    expect(pre.RIP).toBe(16);
    expect(pre.rawLimit).toBe(17);
    expect(pre.maskBits).toBe(32);
    expect(pre.allMask).toBe(0xffff_ffffn);
    expect(pre.name(17)).toBe("VCPU_EXREG_PDPTR");
    expect(pre.name(16)).toBe("VCPU_REGS_RIP");
    expect(regLayout().name(17)).toBe("VCPU_REG_PDPTR");
  });

  test("maskNames lists set bits in enum order", () => {
    expect(maskNames(regLayout(), (1n << 4n) | (1n << 16n))).toEqual(["VCPU_REG_RSP", "VCPU_REG_RIP"]);
  });
});
