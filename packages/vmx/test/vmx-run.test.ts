import { describe, expect, test } from "vitest";
import { createMachine, type TraceStep, type KvmxEvent } from "@kvmx/core";
import { vmxBackend } from "../src/index.js";
import { vmxRunSites } from "../src/vmx-run.js";

const trace = (pre: boolean, events: KvmxEvent[], design = "asm-conditional", kernelApx = false) => {
  const m = createMachine({ backend: vmxBackend, design, host: { cpu: "dmr", kernelApx }, guest: { apx: true }, pre });
  let s = m.initialState();
  const all: TraceStep[][] = [];
  const violations = [];
  for (const e of events) {
    const t: TraceStep[] = [];
    const r = m.apply(s, e, t);
    s = r.state;
    all.push(t);
    violations.push(...r.violations);
  }
  return { all, violations, state: s, m };
};

describe("__vmx_vcpu_run as sites", () => {
  test("POST order: entry C and asm, guest SPEC_CTRL, GPR load, anchor, VM-entry, guest, VM-exit, anchor, GPR store and clearing, RSB fill, host SPEC_CTRL in asm, exit asm, avail clear, NMI", () => {
    expect(vmxRunSites({ pre: false }).map((s) => `${s.id}/${s.kind}`)).toEqual([
      "vmx:vcpu-run/c", "vmx:vcpu-enter-exit/c", "vmx:asm-entry/asm", "vmx:asm-spec-ctrl-guest/asm", "vmx:asm-load-gprs/asm", "vmx:asm-before-vmenter/asm",
      "vmx:vmenter/hw", "guest/guest", "vmx:vmexit/hw", "vmx:asm-after-vmexit/asm", "vmx:asm-store-gprs/asm", "vmx:asm-clear-gprs/asm", "vmx:asm-rsb-fill/asm",
      "vmx:asm-spec-ctrl-host/asm", "vmx:asm-exit/asm", "vmx:clear-lazy-avail/c", "vmx:handle-nmi/c",
    ]);
  });

  test("PRE restores host SPEC_CTRL in C: in a -mapxf host that C call is one more site needing XCR0.APX", () => {
    expect(vmxRunSites({ pre: true }).find((s) => s.id === "vmx:spec-ctrl-host")?.kind).toBe("c");
    const ev: KvmxEvent[] = [{ kind: "guest-io" }];
    const pre = trace(true, ev, "hw-xcr0-switch", true);
    const post = trace(false, ev, "hw-xcr0-switch", true);
    expect(post.violations).toEqual([]);
    expect(pre.violations).toEqual([]); // the hardware switch restored host XCR0 before it: still safe
    const preCond = trace(true, ev, "asm-conditional", true).violations.map((v) => v.site);
    const postCond = trace(false, ev, "asm-conditional", true).violations.map((v) => v.site);
    expect(preCond).toContain("vmx:spec-ctrl-host");
    expect(postCond).not.toContain("vmx:asm-spec-ctrl-host");
  });

  test("PRE keeps RIP in regs[16] and a u32 avail mask; POST has a dedicated rip", () => {
    const ev: KvmxEvent[] = [{ kind: "guest-io" }, { kind: "guest-io" }];
    const pre = trace(true, ev, "fpstate");
    const post = trace(false, ev, "fpstate");
    const vPre = pre.state.vcpus[0]!;
    const vPost = post.state.vcpus[0]!;
    // Each guest event starts at GUEST_CODE; KVM skipped the 2-byte OUT imm8 of the last one.
    expect(vPre.regs.get(16)).toBe(0x10_0000n + 2n);
    expect(vPost.rip).toBe(0x10_0000n + 2n);
    expect(vPost.regs.get(15)).toBe(0n);
    expect(vPre.regsAvail >> 32n).toBe(0n);
    expect(pre.violations).toEqual([]);
    expect(post.violations).toEqual([]);
  });

  test("lazy set cleared after every exit; only RSP/RIP written back (when dirty), then dirty = 0", () => {
    const { all } = trace(false, [{ kind: "guest-io" }, { kind: "guest-io" }]);
    const second = all[1]!;
    const wb = second.find((t) => t.site === "vmx:vcpu-run")!;
    expect(wb.description).toContain("RIP written to the VMCS");
    expect(wb.dirtyCleared).toEqual(["VCPU_REG_RIP"]);
    const clear = second.find((t) => t.site === "vmx:clear-lazy-avail")!;
    expect(clear.availCleared).toEqual(["VCPU_REG_RIP"]); // RIP was reloaded by the skip; the rest stayed unavailable
  });

  test("WRMSRNS-imm names R16 through the 5-bit extended field; the fastpath re-enters the guest", () => {
    const { all, violations, state } = trace(false, [
      { kind: "guest-xsetbv", value: "0xe02e7" },
      { kind: "guest-wrmsrns-imm", reg: "r16", value: "0x4242" },
    ]);
    expect(violations).toEqual([]);
    expect(state.vcpus[0]!.msrs.get(0x6e0)).toBe(0x4242n);
    const sites = all[1]!.map((t) => t.site);
    expect(sites.filter((s) => s === "guest")).toHaveLength(2); // REENTER_GUEST looped back
    expect(all[1]!.find((t) => t.site === "x86:fastpath")!.description).toContain("REENTER_GUEST");
  });

  test("an NMI while the guest runs exits with reason 0 and runs the host handler in vmx_handle_nmi", () => {
    const { all } = trace(false, [{ kind: "nmi", site: "guest" }, { kind: "guest-io" }]);
    const nmi = all[1]!.find((t) => t.site === "vmx:handle-nmi")!;
    expect(nmi.description).toContain("host NMI handler runs at vmx:handle-nmi");
    expect(all[1]!.filter((t) => t.site === "guest")).toHaveLength(2); // re-entered after the NMI exit
  });
});
