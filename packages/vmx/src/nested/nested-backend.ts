/**
 * The nested VMX backend ("vmx-nested"): L0 KVM running an L1 hypervisor whose L2 guest is the one
 * the events drive once L1 has launched it. The world switch is VMX's (vmx-run.ts) — the exit site
 * also reports L1's VMLAUNCH/VMRESUME — and handle_exit adds nested_vmx_run and the reflection of
 * L2 exits L1 wants (docs/facts.md#nested-vmx-apx, #nested-switch-vmcs). Vendor events:
 * vmx-nested:vmlaunch (L1 VMLAUNCH/VMRESUME), vmx-nested:l2-exit-reflected (L2 CPUID, which always
 * exits to L1), vmx-nested:l2-exit-l0 (L0's preemption timer ends L2's slice; L0 handles it, L2 stays
 * loaded).
 */
import {
  FastpathResult, InputError, RunCtx, defineVendorFields, kvmRun, valLow, vid,
  type ExitDisposition, type GuestOp, type MachineState, type Site, type VendorCtx, type VendorEvent, type VendorField, type VendorOps,
} from "@kvmx/core";
import { vmxIntercepts } from "../backend.js";
import { EXIT_REASON } from "../exit-reasons.js";
import { vmxCacheReg, vmxLazyLoadSet } from "../vmx-cache-reg.js";
import { vmxFastpath, vmxHandleExit } from "../vmx-exits.js";
import { vmxRunSites } from "../vmx-run.js";
import { VMCS_FIELD, VMCS_FIELDS } from "../vmcs-fields.js";
import { NESTED_EXIT_REASON, l1WantsExit, nestedVmxEnterNonRootMode, nestedVmxVmexit, type NestedVariant } from "./nested-vmx.js";
import { LOADED_VMCS_FIELD, VMCS01_FIELD, VMCS02_FIELD } from "./switch-vmcs.js";
import { L1_CRS, L1_HOST_RIP, L2_ENTRY, NESTED_FIELD, VMCS12_FIELD as F12, isGuestMode } from "./vmcs12.js";
import { ONE_ID, numId } from "../value-ids.js";

const RSP = 4;
export const NESTED_EVENT_KINDS = ["vmx-nested:vmlaunch", "vmx-nested:l2-exit-reflected", "vmx-nested:l2-exit-l0"] as const;
export type NestedEventKind = (typeof NESTED_EVENT_KINDS)[number];

/**
 * L1's VMLAUNCH/VMRESUME, pending from the vendor event until the VM-exit site of the same KVM_RUN
 * reports it (exit reason 20/24; 0 = none): always consumed within the event.
 */
const PENDING = defineVendorFields({ "nested.pending_insn": "control" })["nested.pending_insn"];

/** Every vendor field the nested backend's vCPUs have: VMX's VMCS (the loaded one), the parked VMCSs, vmcs12, nested state. */
export const NESTED_VMX_FIELDS: readonly VendorField[] = [
  ...VMCS_FIELDS,
  ...Object.values(VMCS01_FIELD),
  ...Object.values(VMCS02_FIELD),
  ...Object.values(F12),
  ...Object.values(NESTED_FIELD),
  ...Object.values(LOADED_VMCS_FIELD),
  PENDING,
];

/** VMLAUNCH/VMRESUME are 3 bytes (0F 01 C2 / 0F 01 C3). */
const VMX_INSN_LEN_ID = numId(3);
const VMLAUNCH_ID = numId(NESTED_EXIT_REASON.VMLAUNCH);
const VMRESUME_ID = numId(NESTED_EXIT_REASON.VMRESUME);
const L1_HOST_RIP_ID = vid(L1_HOST_RIP);
const L1_CR0_ID = vid(L1_CRS.cr0);
const L1_CR3_ID = vid(L1_CRS.cr3);
const L1_CR4_ID = vid(L1_CRS.cr4);
const L2_RSP_ID = vid(L2_ENTRY.rsp);
const L2_RIP_ID = vid(L2_ENTRY.rip);
const L2_CR3_ID = vid(L2_ENTRY.cr3);
const RFLAGS_FIXED_ID = numId(2);

/** The registers a reflected exit leaves unfinished in L2 (CPUID's outputs). */
const CPUID_OUTPUTS: readonly number[] = [0, 1, 2, 3];
/** Guest R0..R15 (ids) as the VM-exit found them, before the exit site ran. */
const regsBefore: number[] = new Array<number>(16).fill(0);

const exitReason = (ctx: VendorCtx): number => valLow(ctx.vcpu.vendorId(VMCS_FIELD.VM_EXIT_REASON)) & 0xffff;

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
            const cpu = ctx.cpu;
            for (let r = 0; r < 16; r++) regsBefore[r] = cpu.gprId(r);
            s.run?.(ctx);
            const pending = v.vendorId(PENDING);
            if (pending !== 0) {
              v.vendorSetId(PENDING, 0);
              v.vendorSetId(VMCS_FIELD.VM_EXIT_REASON, pending);
              v.vendorSetId(VMCS_FIELD.VM_EXIT_INSTRUCTION_LEN, VMX_INSN_LEN_ID);
              if (ctx.tracing) ctx.note(`L1 executed ${pending === VMLAUNCH_ID ? "VMLAUNCH" : "VMRESUME"}: VM-exit to L0`);
              return;
            }
            if (!isGuestMode(v) || !e || !l1WantsExit(exitReason(ctx))) return;
            const expected = ctx.st.expected;
            if (e.kind === "cpuid") {
              for (const r of CPUID_OUTPUTS) expected.setId(r, regsBefore[r]!);
            } else if (e.kind === "rdmsr-imm" && e.reg !== RSP && e.reg < 16) {
              expected.setId(e.reg, regsBefore[e.reg]!);
            }
          },
        },
  );
}

/** The vendor events offered in L1 and in L2 (built once). */
const L1_EVENTS: readonly VendorEvent[] = [{ kind: "vmx-nested:vmlaunch" }];
const L2_EVENTS: readonly VendorEvent[] = [{ kind: "vmx-nested:l2-exit-reflected" }, { kind: "vmx-nested:l2-exit-l0" }];
/** L2's program for vmx-nested:l2-exit-reflected: a CPUID, which always exits to L1. */
const L2_CPUID: readonly GuestOp[] = [{ insn: { op: "cpuid" } }];
const NO_PROGRAM: readonly GuestOp[] = [];

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
    const launched = v.vendorId(F12.launch_state) === ONE_ID;
    const isLaunch = reason === NESTED_EXIT_REASON.VMLAUNCH;
    if (launched === isLaunch) {
      if (ctx.tracing) ctx.note(`${isLaunch ? "VMLAUNCH of a launched" : "VMRESUME of a clear"} vmcs12: VMfailValid, L1 continues`);
      return "handled";
    }
    nestedVmxEnterNonRootMode(ctx, variant);
    return "handled";
  }

  return {
    name: o.name ?? "vmx-nested",
    description: "nested VMX: L0 KVM runs L1's L2 on vmcs02 (vmx_switch_vmcs, vmcs12 sync, exit reflection, extended instruction info at vmcs12+336)",
    xfeatureSwitch: "kvm",
    vendorFields: NESTED_VMX_FIELDS,
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
    handleExitIrqoff(ctx) {
      if (ctx.tracing) ctx.note(`vmx_handle_exit_irqoff (${isGuestMode(ctx.vcpu) ? "L2" : "L1"} exit)`);
    },
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
      return isGuestMode(v) ? L2_EVENTS : L1_EVENTS;
    },
    applyVendorEvent(ctx, e) {
      if (!(ctx instanceof RunCtx)) throw new InputError(`${e.kind}: needs core's RunCtx`);
      const v = ctx.vcpu;
      let program = NO_PROGRAM;
      switch (e.kind) {
        case "vmx-nested:vmlaunch": {
          if (isGuestMode(v)) {
            ctx.step("user:vmx-nested", "user", "L2 is running: VMLAUNCH/VMRESUME is L1's instruction; nothing happens", () => undefined);
            return;
          }
          const launched = v.vendorId(F12.launch_state) === ONE_ID;
          // L1's VMWRITEs (shadow VMCS): its host state (its own RSP and CRs, which L1 knows
          // architecturally), and L2's entry state on the first launch (same paging as L1, own stack).
          v.vendorSetId(F12.host_rsp, ctx.st.expected.id(RSP));
          v.vendorSetId(F12.host_rip, L1_HOST_RIP_ID);
          v.vendorSetId(F12.host_cr0, L1_CR0_ID);
          v.vendorSetId(F12.host_cr3, L1_CR3_ID);
          v.vendorSetId(F12.host_cr4, L1_CR4_ID);
          if (!launched) {
            v.vendorSetId(F12.guest_rsp, L2_RSP_ID);
            v.vendorSetId(F12.guest_rip, L2_RIP_ID);
            v.vendorSetId(F12.guest_rflags, RFLAGS_FIXED_ID);
            v.vendorSetId(F12.guest_cr0, L1_CR0_ID);
            v.vendorSetId(F12.guest_cr3, L2_CR3_ID);
            v.vendorSetId(F12.guest_cr4, L1_CR4_ID);
          }
          v.vendorSetId(PENDING, launched ? VMRESUME_ID : VMLAUNCH_ID);
          break;
        }
        case "vmx-nested:l2-exit-reflected":
          if (isGuestMode(v)) program = L2_CPUID;
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
      isGuestMode,
    },
  };
}

export const vmxNestedBackend: VendorOps = createNestedVmxBackend();
