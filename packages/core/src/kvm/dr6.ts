/**
 * Guest DR6 (feature dr6, docs/facts.md#dr6). While userspace does not debug the guest, the guest's
 * first DR access exits and KVM stops intercepting (KVM_DEBUGREG_WONT_EXIT) and lets the instruction
 * run again; from then on KVM loads the guest's DR6 into hardware before entering and saves it after
 * the run loop (sync_dirty_debug_regs), which turns interception back on. Where the load sits is the
 * point of commit c2fee09fc167: inside the run loop (before it) a fastpath re-entry reloads a stale
 * vcpu->arch.dr6 over the guest's own write.
 */
import { compileInstruction } from "../cpu/executor.js";
import { Tag } from "../cpu/provenance.js";
import { DR6_INIT_ID, dbWontExit, guestDr6Id, hexId, setDbWontExit, setGuestDr6Id } from "./feature-state.js";
import type { RunCtx } from "./run-context.js";
import type { ExitDisposition, VendorCtx } from "./vendor-ops.js";
import type { VcpuState } from "./vcpu.js";

const RAX = 0;
const MOV_DR6_RAX = compileInstruction({ op: "mov-dr6-rax" });
const MOV_RAX_DR6 = compileInstruction({ op: "mov-rax-dr6" });

/** set_debugreg(value, 6) through the executor (RAX as the scratch register, put back afterwards). */
function setDr6(ctx: RunCtx, id: number): void {
  const saved = ctx.saveGpr(RAX);
  ctx.cpu.setGprId(RAX, id, Tag.hostKernel);
  ctx.hostRun(MOV_DR6_RAX);
  ctx.restoreGpr(RAX, saved);
}

/** Step x86:load-guest-dr6 (kvm_x86_ops.set_dr6): with KVM_DEBUGREG_WONT_EXIT, hardware DR6 = vcpu->arch.dr6. */
export function loadGuestDr6(ctx: RunCtx): void {
  const v = ctx.vcpu;
  if (!dbWontExit(v)) return;
  setDr6(ctx, guestDr6Id(v));
  if (ctx.tracing) ctx.note(`DR6 = vcpu->arch.dr6 ${hexId(guestDr6Id(v))}`);
}

/** Step x86:sync-debugregs: with KVM_DEBUGREG_WONT_EXIT, vcpu->arch.dr6 = hardware DR6, DR accesses exit again, DR6 reset. */
export function syncDebugRegs(ctx: RunCtx): void {
  const v = ctx.vcpu;
  if (!dbWontExit(v)) return;
  const saved = ctx.saveGpr(RAX);
  if (ctx.hostRun(MOV_RAX_DR6)) setGuestDr6Id(v, ctx.cpu.gprId(RAX));
  ctx.restoreGpr(RAX, saved);
  setDbWontExit(v, false);
  setDr6(ctx, DR6_INIT_ID);
  if (ctx.tracing) ctx.note(`vcpu->arch.dr6 = ${hexId(guestDr6Id(v))} (saved); MOV DR exits again`);
}

/**
 * handle_dr for a guest MOV DR while userspace does not debug the guest: stop intercepting
 * (KVM_DEBUGREG_WONT_EXIT) and let the guest run the instruction again — no RIP advance.
 */
export function kvmHandleDrAccess(ctx: VendorCtx): ExitDisposition {
  setDbWontExit(ctx.vcpu, true);
  ctx.note("DR access: MOV DR exiting off (KVM_DEBUGREG_WONT_EXIT), the guest runs it again");
  return "handled";
}

/** Whether a guest MOV DR exits: until KVM set KVM_DEBUGREG_WONT_EXIT. */
export const drAccessExits = (v: VcpuState): boolean => !dbWontExit(v);
