/**
 * PKRU around the guest (feature pkru, docs/facts.md#pkru): kvm_load_guest_pkru before the run loop
 * and kvm_load_host_pkru after it. Both are keyed on a condition — since commit 37486135d3a7 "CR4.PKE
 * or XCR0.PKRU", before it CR4.PKE alone — which a variant can change (`key:`). Every PKRU access
 * goes through the executor (RDPKRU/WRPKRU on the host, which has CR4.PKE).
 */
import { compileInstruction } from "../cpu/executor.js";
import { Tag } from "../cpu/provenance.js";
import { VALUES, vid } from "../cpu/values.js";
import { HOST_PKRU, HOST_PKRU_ID } from "./feature-state.js";
import type { RunCtx } from "./run-context.js";

const RAX = 0, RCX = 1, RDX = 2;
const WRPKRU = compileInstruction({ op: "wrpkru" });
const RDPKRU = compileInstruction({ op: "rdpkru" });
const LOW = VALUES.low;

/** X86_FEATURE_PKU on the host (CPUID.(7,0):ECX[3]). */
const hostHasPku = (ctx: RunCtx): boolean => (ctx.cfg.hostCpuidLookup(7, 0).ecx & (1 << 3)) !== 0;

/** WRPKRU with EAX = `id`'s low 32 bits (ECX = EDX = 0), through the executor. */
function wrpkru(ctx: RunCtx, id: number): void {
  const cpu = ctx.cpu;
  cpu.setGprId(RAX, vid(BigInt(LOW[id]!)), Tag.hostKernel);
  cpu.setGprId(RCX, 0, Tag.hostKernel);
  cpu.setGprId(RDX, 0, Tag.hostKernel);
  ctx.hostRun(WRPKRU);
}

/** The checks both PKRU loads start with: not for protected state, only with PKU, only when the key holds. */
function switchesPkru(ctx: RunCtx, key: (ctx: RunCtx) => boolean, what: string): boolean {
  if (ctx.vcpu.protectedState) {
    ctx.note("skipped: protected guest state");
    return false;
  }
  if (!hostHasPku(ctx)) return false;
  if (key(ctx)) return true;
  if (ctx.tracing) ctx.note(`${what} (key condition false)`);
  return false;
}

/** kvm_load_guest_pkru: with PKU, the key, and a guest PKRU other than the host's, WRPKRU(guest). */
export const loadGuestPkru =
  (key: (ctx: RunCtx) => boolean) =>
  (ctx: RunCtx): void => {
    const v = ctx.vcpu;
    if (!switchesPkru(ctx, key, "guest PKRU not loaded") || v.pkruId === ctx.cpu.pkruId) return;
    wrpkru(ctx, v.pkruId);
    if (ctx.tracing) ctx.note(`WRPKRU guest 0x${v.pkru.toString(16)}`);
  };

/** kvm_load_host_pkru: with PKU and the key, RDPKRU into vcpu->arch.pkru, and WRPKRU(host) if they differ. */
export const loadHostPkru =
  (key: (ctx: RunCtx) => boolean) =>
  (ctx: RunCtx): void => {
    if (!switchesPkru(ctx, key, "host PKRU not restored")) return;
    const v = ctx.vcpu;
    const cpu = ctx.cpu;
    cpu.setGprId(RCX, 0, Tag.hostKernel);
    if (ctx.hostRun(RDPKRU)) v.pkruId = vid(BigInt(LOW[cpu.gprId(RAX)]!));
    if (v.pkruId === HOST_PKRU_ID) return;
    wrpkru(ctx, HOST_PKRU_ID);
    if (ctx.tracing) ctx.note(`guest PKRU 0x${v.pkru.toString(16)} saved, WRPKRU host 0x${HOST_PKRU.toString(16)}`);
  };
