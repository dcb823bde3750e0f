/**
 * Steps of KVM's vCPU life cycle and of its older XCR0 handling, as the variant engine runs them
 * (steps.ts): the guest_xcr0_loaded flag KVM kept up to v4.x (docs/facts.md#xcr0-loaded-flag), the
 * guest CR3 at RESET/INIT and its write-back (feature cr3, docs/facts.md#cr3-reset), and
 * KVM_CREATE_VCPU with the RESET it ends with (feature vcpu-create, docs/facts.md#vcpu-create).
 */
import { Tag } from "../cpu/provenance.js";
import { FEATURE_BIT } from "./features.js";
import {
  resetExpectedFeatureState, setVendorUninit, setXcr0Loaded, xcr0Loaded,
} from "./feature-state.js";
import { newVcpu } from "./machine.js";
import { markDirty, readCr3 } from "./register-cache.js";
import type { RunCtx } from "./run-context.js";
import { hostXsetbvId } from "./sites.js";
import { vcpuReset } from "./apply-event.js";

// ---- the guest_xcr0_loaded flag (KVM up to v4.x) -----------------------------------------------

/** kvm_load_guest_xcr0 as KVM had it until v4.x: with CR4.OSXSAVE and the flag clear, XSETBV(guest) and set the flag. */
export function loadGuestXcr0Flagged(ctx: RunCtx): void {
  const v = ctx.vcpu;
  if (v.protectedState || !v.cr4Osxsave || xcr0Loaded(v)) {
    if (ctx.tracing) ctx.note(xcr0Loaded(v) ? "guest_xcr0_loaded already set: no XSETBV" : "skipped");
    return;
  }
  hostXsetbvId(ctx, v.xcr0Id, "guest XCR0");
  setXcr0Loaded(v, true);
}

/** kvm_put_guest_xcr0 until v4.x: with the flag set, XSETBV(host) if KVM's guest XCR0 differs from it, clear the flag. */
export function putGuestXcr0(ctx: RunCtx): void {
  const v = ctx.vcpu;
  if (!xcr0Loaded(v)) {
    if (ctx.tracing) ctx.note("kvm_put_guest_xcr0: guest_xcr0_loaded clear, nothing to do");
    return;
  }
  if (v.xcr0Id !== ctx.hostXcr0Id) hostXsetbvId(ctx, ctx.hostXcr0Id, "host XCR0 (kvm_put_guest_xcr0)");
  setXcr0Loaded(v, false);
}

/** What __kvm_set_xcr did before 42bdf991f4ca: clear guest_xcr0_loaded — whatever XCR0 the CPU holds. */
export function forgetGuestXcr0(ctx: RunCtx): void {
  setXcr0Loaded(ctx.vcpu, false);
  if (ctx.tracing) ctx.note("guest_xcr0_loaded = 0");
}

// ---- CR3 --------------------------------------------------------------------------------------

/** kvm_mmu_reload before VM-entry: the vendor's load_mmu_pgd writes a dirty CR3 back (feature cr3). */
export function mmuReload(ctx: RunCtx): void {
  ctx.backend.loadMmuPgd?.(ctx);
}

/** 03a6e84069d1: RESET and INIT zero vcpu->arch.cr3 and mark it dirty (architecturally CR3 is 0 after both). */
export function resetClearCr3(ctx: RunCtx): void {
  const v = ctx.vcpu;
  v.cr3 = 0n;
  markDirty(v, v.layout.CR3);
  if (ctx.tracing) ctx.note("vcpu->arch.cr3 = 0, marked dirty");
}

// ---- RESET / INIT and KVM_CREATE_VCPU -----------------------------------------------------------

/** Which kvm_vcpu_reset the "vcpu-reset" steps are running. */
let resetKind: "reset" | "init" = "reset";

/** kvm_vcpu_reset as a sequence of steps (variants.ts "vcpu-reset"). */
export function runResetSteps(ctx: RunCtx, kind: "reset" | "init"): void {
  resetKind = kind;
  ctx.runSequence("vcpu-reset");
}

/** Step x86:reset-state: the model's kvm_vcpu_reset (apply-event.ts) and the vendor's reset, which writes its state. */
export function resetState(ctx: RunCtx): void {
  vcpuReset(ctx, resetKind);
  setVendorUninit(ctx.vcpu, false);
  resetExpectedFeatureState(ctx.cfg, ctx.st, resetKind);
}

/**
 * Step x86:reset-vendor-set-cr0: the vendor's set_cr0 at RESET reads the guest's CR3 through KVM's
 * cache (kvm_read_cr3) — the read commit 7117003fe4e3's message names (ept_update_paging_mode_cr0).
 */
export function resetVendorSetCr0(ctx: RunCtx): void {
  const cr3 = readCr3(ctx);
  if (ctx.tracing) ctx.note(`set_cr0 reads CR3 (0x${cr3.toString(16)})`);
}

/** Step x86:vcpu-create-mark-regs (7117003fe4e3): regs_avail = regs_dirty = all ones at creation. */
export function createMarkRegs(ctx: RunCtx): void {
  const v = ctx.vcpu;
  v.regsAvail = v.layout.allMask;
  v.regsDirty = v.layout.allMask;
}

/** Step x86:vcpu-reset-at-create: kvm_arch_vcpu_create ends with kvm_vcpu_reset(vcpu, false). */
export function resetAtCreate(ctx: RunCtx): void {
  runResetSteps(ctx, "reset");
}

/**
 * KVM_CREATE_VCPU of another vCPU, which the VMM then runs (feature vcpu-create): a zero-allocated
 * vCPU whose vendor state KVM has not written yet, then the "vcpu-create" steps. The guest's
 * architectural view becomes the new vCPU's (RESET values, set by its reset).
 */
export function createVcpuEvent(ctx: RunCtx): void {
  const cfg = ctx.cfg;
  const st = ctx.st;
  const v = newVcpu(cfg, st, st.vcpus.length, ctx.design);
  st.current = st.vcpus.length - 1;
  v.regsAvail = 0n;
  v.regsDirty = 0n;
  v.regs.fillTagged(0n, Tag.init);
  setVendorUninit(v, true);
  // The vCPU is zero-allocated: its cached CR3 is 0 until something writes it.
  if (cfg.features & FEATURE_BIT.cr3) v.cr3 = 0n;
  ctx.runSequence("vcpu-create");
}
