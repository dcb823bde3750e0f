/**
 * The nested VMX backend ("vmx-nested"): L0 KVM running an L1 hypervisor whose L2 guest is the one
 * the events drive once L1 has launched it. The world switch is VMX's (vmx-run.ts) — the exit site
 * also reports L1's VMLAUNCH/VMRESUME — and handle_exit adds nested_vmx_run and the reflection of
 * L2 exits L1 wants (FACTS.md §1, §3). Vendor events: vmx-nested:vmlaunch (L1 VMLAUNCH/VMRESUME),
 * vmx-nested:l2-exit-reflected (L2 CPUID, which always exits to L1), vmx-nested:l2-exit-l0 (L0's
 * preemption timer ends L2's slice; L0 handles it, L2 stays loaded).
 */
import {
  FastpathResult, InputError, RunCtx, kvmRun,
  type ExitDisposition, type GuestOp, type MachineState, type Site, type VendorCtx, type VendorEvent, type VendorOps,
} from "@kvmx/core";
import { vmxIntercepts } from "../backend.js";
import { EXIT_REASON } from "../exit-reasons.js";
import { vmxCacheReg, vmxLazyLoadSet } from "../vmx-cache-reg.js";
import { vmxFastpath, vmxHandleExit } from "../vmx-exits.js";
import { vmxRunSites } from "../vmx-run.js";
import { vmcsRead, vmcsWrite } from "../vmcs-fields.js";
import { NESTED_EXIT_REASON, l1WantsExit, nestedVmxEnterNonRootMode, nestedVmxVmexit, type NestedVariant } from "./nested-vmx.js";
import { L1_CRS, L1_HOST_RIP, L2_ENTRY, isGuestMode, vmcs12Read, vmcs12Write } from "./vmcs12.js";

const RSP = 4;
export const NESTED_EVENT_KINDS = ["vmx-nested:vmlaunch", "vmx-nested:l2-exit-reflected", "vmx-nested:l2-exit-l0"] as const;
export type NestedEventKind = (typeof NESTED_EVENT_KINDS)[number];

/** VMLAUNCH/VMRESUME are 3 bytes (0F 01 C2 / 0F 01 C3). */
const VMX_INSN_LEN = 3n;

const exitReason = (ctx: VendorCtx): number => Number(vmcsRead(ctx.vcpu, "VM_EXIT_REASON") & 0xffffn);

/**
 * VMX's sequence with one change at the VM-exit site: an L1 VMLAUNCH/VMRESUME (the executor has no
 * VMX instructions, so the event marks it pending) is reported with its own exit reason; and an L2
 * exit that will be reflected does not complete the instruction in L2 — L1 sees L2's registers as
 * they were at the exit, so the guest's expected view is taken from them.
 */
function nestedRunSites(pre: boolean): readonly Site[] {
  return vmxRunSites({ pre }).map((s) =>
    s.id !== "vmx:vmexit"
      ? s
      : {
          ...s,
          description: `${s.description}; L1 VMLAUNCH/VMRESUME and reflected L2 exits reported here`,
          run: (ctx: VendorCtx) => {
            const v = ctx.vcpu;
            const e = ctx.guestExit;
            const regsBefore = Array.from({ length: 16 }, (_, r) => ctx.cpu.gpr[r] ?? 0n);
            s.run?.(ctx);
            const pending = v.vendor["nested.pending_insn"];
            if (pending !== undefined) {
              delete v.vendor["nested.pending_insn"];
              vmcsWrite(v, "VM_EXIT_REASON", pending);
              vmcsWrite(v, "VM_EXIT_INSTRUCTION_LEN", VMX_INSN_LEN);
              ctx.note(`L1 executed ${pending === BigInt(NESTED_EXIT_REASON.VMLAUNCH) ? "VMLAUNCH" : "VMRESUME"}: VM-exit to L0`);
              return;
            }
            if (!isGuestMode(v) || !e || !l1WantsExit(exitReason(ctx))) return;
            const unfinished = e.kind === "cpuid" ? [0, 1, 2, 3] : e.kind === "rdmsr-imm" ? [e.reg] : [];
            for (const r of unfinished) if (r !== RSP && r < 16) ctx.st.expected[r] = regsBefore[r]!;
          },
        },
  );
}

export interface NestedBackendOptions extends NestedVariant {
  readonly name?: string;
}

export function createNestedVmxBackend(o: NestedBackendOptions = {}): VendorOps {
  const post = nestedRunSites(false);
  const prev = nestedRunSites(true);
  const variant: NestedVariant = o.switchRegs ? { switchRegs: o.switchRegs } : {};

  /** nested_vmx_run: launch-state checks (VMfailValid skips the instruction), then nested VM-entry. */
  function nestedVmxRun(ctx: VendorCtx, reason: number): ExitDisposition {
    const v = ctx.vcpu;
    const launched = vmcs12Read(v, "launch_state") === 1n;
    const isLaunch = reason === NESTED_EXIT_REASON.VMLAUNCH;
    if (launched === isLaunch) {
      ctx.note(`${isLaunch ? "VMLAUNCH of a launched" : "VMRESUME of a clear"} vmcs12: VMfailValid, L1 continues`);
      return "handled";
    }
    nestedVmxEnterNonRootMode(ctx, variant);
    return "handled";
  }

  return {
    name: o.name ?? "vmx-nested",
    description: "nested VMX: L0 KVM runs L1's L2 on vmcs02 (vmx_switch_vmcs, vmcs12 sync, exit reflection, extended instruction info at vmcs12+336)",
    xfeatureSwitch: "kvm",
    hasProtectedState: () => false,
    adjustSupportedXcr0: (x) => x,
    lazyAvailMask: vmxLazyLoadSet,
    intercepts: vmxIntercepts,
    cacheReg: vmxCacheReg,
    runSites: (opts) => (opts.pre ? prev : post),
    fastpath(ctx) {
      // vmx_exit_handlers_fastpath: with L2 active only L0's preemption timer may use the fastpath.
      if (isGuestMode(ctx.vcpu) && exitReason(ctx) !== EXIT_REASON.PREEMPTION_TIMER) return FastpathResult.NONE;
      return vmxFastpath(ctx);
    },
    handleExitIrqoff: (ctx) => ctx.note(`vmx_handle_exit_irqoff (${isGuestMode(ctx.vcpu) ? "L2" : "L1"} exit)`),
    handleExit(ctx) {
      const reason = exitReason(ctx);
      if (!isGuestMode(ctx.vcpu)) {
        if (reason === NESTED_EXIT_REASON.VMLAUNCH || reason === NESTED_EXIT_REASON.VMRESUME) return nestedVmxRun(ctx, reason);
        return vmxHandleExit(ctx);
      }
      if (ctx.fastpathResult !== FastpathResult.EXIT_HANDLED && l1WantsExit(reason)) {
        nestedVmxVmexit(ctx, variant);
        return "handled";
      }
      ctx.note("L2 exit handled by L0; L2 stays loaded");
      return vmxHandleExit(ctx);
    },
    vendorEvents(state: MachineState): readonly VendorEvent[] {
      const v = state.vcpus[state.current];
      if (!v) return [];
      return isGuestMode(v) ? [{ kind: "vmx-nested:l2-exit-reflected" }, { kind: "vmx-nested:l2-exit-l0" }] : [{ kind: "vmx-nested:vmlaunch" }];
    },
    applyVendorEvent(ctx, e) {
      if (!(ctx instanceof RunCtx)) throw new InputError(`${e.kind}: needs core's RunCtx`);
      const v = ctx.vcpu;
      let program: GuestOp[] = [];
      switch (e.kind) {
        case "vmx-nested:vmlaunch": {
          if (isGuestMode(v)) {
            ctx.step("user:vmx-nested", "user", "L2 is running: VMLAUNCH/VMRESUME is L1's instruction; nothing happens", () => undefined);
            return;
          }
          const launched = vmcs12Read(v, "launch_state") === 1n;
          // L1's VMWRITEs (shadow VMCS): its host state (its own RSP and CRs, which L1 knows
          // architecturally), and L2's entry state on the first launch (same paging as L1, own stack).
          vmcs12Write(v, "host_rsp", ctx.st.expected[RSP]!);
          vmcs12Write(v, "host_rip", L1_HOST_RIP);
          vmcs12Write(v, "host_cr0", L1_CRS.cr0);
          vmcs12Write(v, "host_cr3", L1_CRS.cr3);
          vmcs12Write(v, "host_cr4", L1_CRS.cr4);
          if (!launched) {
            vmcs12Write(v, "guest_rsp", L2_ENTRY.rsp);
            vmcs12Write(v, "guest_rip", L2_ENTRY.rip);
            vmcs12Write(v, "guest_rflags", 2n);
            vmcs12Write(v, "guest_cr0", L1_CRS.cr0);
            vmcs12Write(v, "guest_cr3", L2_ENTRY.cr3);
            vmcs12Write(v, "guest_cr4", L1_CRS.cr4);
          }
          v.vendor["nested.pending_insn"] = BigInt(launched ? NESTED_EXIT_REASON.VMRESUME : NESTED_EXIT_REASON.VMLAUNCH);
          break;
        }
        case "vmx-nested:l2-exit-reflected":
          program = isGuestMode(v) ? [{ insn: { op: "cpuid" } }] : [];
          break;
        case "vmx-nested:l2-exit-l0":
          break;
        default:
          throw new InputError(`event kind "${e.kind}" is unknown to backend vmx-nested (known: ${NESTED_EVENT_KINDS.join(", ")})`);
      }
      ctx.program = program;
      kvmRun(ctx);
    },
    nested: {
      enterNested: (ctx) => nestedVmxEnterNonRootMode(ctx, variant),
      exitNested: (ctx) => nestedVmxVmexit(ctx, variant),
    },
  };
}

export const vmxNestedBackend: VendorOps = createNestedVmxBackend();
