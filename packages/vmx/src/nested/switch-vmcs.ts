/**
 * vmx_switch_vmcs (nested.c): the loaded VMCS changes between vmcs01 (L1) and vmcs02 (L2), and the
 * register cache forgets everything the old VMCS held (FACTS.md §3): POST avail &= ~lazy set, PRE
 * avail = ~lazy set, dirty = 0. The VMX backend reads "the current VMCS" from the vendor state's
 * plain field names; the inactive one is parked under "vmcs01.<field>" / "vmcs02.<field>".
 */
import { type VcpuState, type VendorCtx } from "@kvmx/core";
import { VMCS, type VmcsField } from "../vmcs-fields.js";
import { vmxLazyLoadSet, vmxSwitchVmcsRegs } from "../vmx-cache-reg.js";

export type LoadedVmcs = "vmcs01" | "vmcs02";

export const loadedVmcs = (v: VcpuState): LoadedVmcs => ((v.vendor["nested.loaded_vmcs"] ?? 0n) === 2n ? "vmcs02" : "vmcs01");

const FIELDS = Object.keys(VMCS) as VmcsField[];

/** How the register cache is reset on the switch; "broken-keep-avail" is a deliberately wrong variant for tests. */
export type SwitchVmcsRegsVariant = "kernel" | "broken-keep-avail";

/**
 * Switches the loaded VMCS. Monitor (DESIGN.md invariant 7): after the switch no lazily loaded
 * register may still be marked available — its regs[] value belongs to the other VMCS.
 */
export function vmxSwitchVmcs(ctx: VendorCtx, to: LoadedVmcs, variant: SwitchVmcsRegsVariant = "kernel"): void {
  const v = ctx.vcpu;
  const from = loadedVmcs(v);
  if (from === to) return;
  for (const f of FIELDS) {
    const cur = v.vendor[f];
    if (cur === undefined) delete v.vendor[`${from}.${f}`];
    else v.vendor[`${from}.${f}`] = cur;
    const next = v.vendor[`${to}.${f}`];
    if (next === undefined) delete v.vendor[f];
    else v.vendor[f] = next;
    delete v.vendor[`${to}.${f}`];
  }
  v.vendor["nested.loaded_vmcs"] = to === "vmcs02" ? 2n : 1n;
  if (variant === "kernel") vmxSwitchVmcsRegs(v);
  const stale = v.regsAvail & vmxLazyLoadSet(v.layout) & v.layout.allMask;
  if (stale !== 0n) {
    ctx.violate("cache-coherence", `vmx_switch_vmcs(${to}) left lazily loaded registers marked available (${v.layout.pre ? "PRE" : "POST"}): their regs[] values belong to ${from}`);
  }
  ctx.note(`vmx_switch_vmcs → ${to}: avail ${v.layout.pre ? "= ~lazy" : "&= ~lazy"}, dirty = 0`);
}
