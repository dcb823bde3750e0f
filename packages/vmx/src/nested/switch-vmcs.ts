/**
 * vmx_switch_vmcs (nested.c): the loaded VMCS changes between vmcs01 (L1) and vmcs02 (L2), and the
 * register cache forgets everything the old VMCS held (docs/facts.md#nested-switch-vmcs): POST
 * avail &= ~lazy set, PRE avail = ~lazy set, dirty = 0. The VMX backend reads "the current VMCS" from
 * the VMCS fields (vmcs-fields.ts); the inactive one is parked in "vmcs01.<field>" / "vmcs02.<field>".
 */
import {
  defineVendorFields, maskWords, vendorFieldSpec, vid,
  type RegLayout, type VcpuState, type VendorCtx, type VendorField, type VendorFieldKind,
} from "@kvmx/core";
import { VMCS, VMCS_FIELD, type VmcsField } from "../vmcs-fields.js";
import { vmxLazyLoadSet, vmxSwitchVmcsRegs } from "../vmx-cache-reg.js";

export type LoadedVmcs = "vmcs01" | "vmcs02";

const FIELDS = Object.keys(VMCS) as VmcsField[];

/**
 * A parked copy has the kind of the field it parks: switches happen only in handle_exit, after the
 * exit information has been read, and the next VM-entry/exit rewrites HOST_RSP and the exit
 * information before anything reads them. GUEST_RIP is the exception: when RIP cannot be marked
 * available (PRE with R16–R31 in regs[]: RIP is regs[32], beyond the u32 bitmaps) every kvm_rip_read
 * goes to cache_reg, so KVM_GET_REGS in a later event reads the GUEST_RIP a switch brought in — a
 * "rip" field (core's vendor-fields.ts): compared exactly in PRE, left out in POST.
 */
const parkedKind = (f: VmcsField): VendorFieldKind => (f === "GUEST_RIP" ? "rip" : vendorFieldSpec(VMCS_FIELD[f]).kind);

function parkedFields(vmcs: LoadedVmcs): Readonly<Record<VmcsField, VendorField>> {
  const ids = defineVendorFields(Object.fromEntries(FIELDS.map((f) => [`${vmcs}.${f}`, parkedKind(f)])) as Record<string, VendorFieldKind>);
  return Object.fromEntries(FIELDS.map((f) => [f, ids[`${vmcs}.${f}`]!])) as Record<VmcsField, VendorField>;
}

/** vmcs01's fields while vmcs02 is loaded (zero otherwise), by VMCS field name. */
export const VMCS01_FIELD = parkedFields("vmcs01");
/** vmcs02's fields while vmcs01 is loaded (zero otherwise). */
export const VMCS02_FIELD = parkedFields("vmcs02");
/** Which VMCS is loaded: 2 = vmcs02, anything else (0 before the first switch, 1) = vmcs01. */
export const LOADED_VMCS_FIELD = defineVendorFields({ "nested.loaded_vmcs": "control" });

const LOADED = LOADED_VMCS_FIELD["nested.loaded_vmcs"];
const VMCS01_ID = vid(1n);
const VMCS02_ID = vid(2n);
const CURRENT: readonly VendorField[] = FIELDS.map((f) => VMCS_FIELD[f]);
const PARKED: Readonly<Record<LoadedVmcs, readonly VendorField[]>> = {
  vmcs01: FIELDS.map((f) => VMCS01_FIELD[f]),
  vmcs02: FIELDS.map((f) => VMCS02_FIELD[f]),
};

export const loadedVmcs = (v: VcpuState): LoadedVmcs => (v.vendorId(LOADED) === VMCS02_ID ? "vmcs02" : "vmcs01");

/** How the register cache is reset on the switch; "broken-keep-avail" is a deliberately wrong variant for tests. */
export type SwitchVmcsRegsVariant = "kernel" | "broken-keep-avail";

/** The lazy set within the layout's registers, as regs_avail words (per layout, computed once). */
const lazyWords = new WeakMap<RegLayout, readonly number[]>();
function lazyAvailWords(l: RegLayout): readonly number[] {
  let w = lazyWords.get(l);
  if (!w) lazyWords.set(l, (w = maskWords(vmxLazyLoadSet(l) & l.allMask)));
  return w;
}

/**
 * Switches the loaded VMCS. Monitor (cache-coherence): after the switch no lazily loaded
 * register may still be marked available — its regs[] value belongs to the other VMCS.
 */
export function vmxSwitchVmcs(ctx: VendorCtx, to: LoadedVmcs, variant: SwitchVmcsRegsVariant = "kernel"): void {
  const v = ctx.vcpu;
  const from = loadedVmcs(v);
  if (from === to) return;
  const park = PARKED[from];
  const load = PARKED[to];
  for (let i = 0; i < CURRENT.length; i++) {
    v.vendorSetId(park[i]!, v.vendorId(CURRENT[i]!));
    v.vendorSetId(CURRENT[i]!, v.vendorId(load[i]!));
    v.vendorSetId(load[i]!, 0);
  }
  v.vendorSetId(LOADED, to === "vmcs02" ? VMCS02_ID : VMCS01_ID);
  if (variant === "kernel") vmxSwitchVmcsRegs(v);
  const lazy = lazyAvailWords(v.layout);
  let stale = 0;
  for (let i = 0; i < lazy.length; i++) stale |= v.availWord(i) & lazy[i]!;
  if (stale !== 0) {
    ctx.violate("cache-coherence", `vmx_switch_vmcs(${to}) left lazily loaded registers marked available (${v.layout.pre ? "PRE" : "POST"}): their regs[] values belong to ${from}`);
  }
  if (ctx.tracing) ctx.note(`vmx_switch_vmcs → ${to}: avail ${v.layout.pre ? "= ~lazy" : "&= ~lazy"}, dirty = 0`);
}
