/**
 * The state the model features add (features.ts): slots of the packed state (state-layout.ts
 * HEADER_FIELDS / VCPU_FIELDS, cpu/physical-cpu.ts CPU_FIELDS), the model's constants for them, and
 * their values in a fresh machine. Every slot holds a constant (0) when its feature is off.
 */
import { Tag } from "../cpu/provenance.js";
import { VALUES, val, vid } from "../cpu/values.js";
import { XFEATURE_MASK, XFEATURE_MASK_XTILE } from "../cpu/xfeatures.js";
import { FEATURE_BIT } from "./features.js";
import type { MachineState } from "./machine-state.js";
import type { ResolvedConfig } from "./machine.js";
import { H, V } from "./state-layout.js";
import type { VcpuState } from "./vcpu.js";

/**
 * The VMM task's PKRU: Linux's default for a task (init_pkru_value: access disabled for keys 1–15),
 * docs/facts.md#pkru. A guest that sees it reads the host's PKRU.
 */
export const HOST_PKRU = 0x5555_5554;
export const HOST_PKRU_ID = vid(BigInt(HOST_PKRU));
/** DR6 at RESET and what KVM leaves in hardware DR6 (DR6_ACTIVE_LOW / DR6_RESERVED), docs/facts.md#dr6. */
export const DR6_INIT = 0xffff_0ff0n;
export const DR6_INIT_ID = vid(DR6_INIT);
/** The CR3 the model's vCPUs start with (vcpu.ts initialise); RESET and INIT make it 0 (docs/facts.md#cr3-reset). */
export const CR3_START_ID = vid(0x1000n);
/** IA32_XFD bit 18: AMX tile data disarmed (XFEATURE_MASK_USER_DYNAMIC). */
export const XFD_TILE_DATA_ID = vid(XFEATURE_MASK.XTILE_DATA);
/** MSR numbers (docs/facts.md#xfd). */
export const MSR_IA32_XFD = 0x1c4;
export const MSR_IA32_XFD_ERR = 0x1c5;

const LOW = VALUES.low;

// ---- header slots -----------------------------------------------------------------------------

export const armedIrq = (st: MachineState): number => st.a[H.ARMED_IRQ]!;
export const setArmedIrq = (st: MachineState, i: number): void => void (st.a[H.ARMED_IRQ] = i);
export const armedSched = (st: MachineState): number => st.a[H.ARMED_SCHED]!;
export const setArmedSched = (st: MachineState, i: number): void => void (st.a[H.ARMED_SCHED] = i);
export const expectedPkruId = (st: MachineState): number => st.a[H.EXPECTED_PKRU]!;
export const setExpectedPkruId = (st: MachineState, id: number): void => void (st.a[H.EXPECTED_PKRU] = id);
export const expectedDr6Id = (st: MachineState): number => st.a[H.EXPECTED_DR6]!;
export const setExpectedDr6Id = (st: MachineState, id: number): void => void (st.a[H.EXPECTED_DR6] = id);
export const expectedCr3Id = (st: MachineState): number => st.a[H.EXPECTED_CR3]!;
export const setExpectedCr3Id = (st: MachineState, id: number): void => void (st.a[H.EXPECTED_CR3] = id);

// ---- vCPU slots -------------------------------------------------------------------------------

/** vcpu->arch.dr6 (value id). */
export const guestDr6Id = (v: VcpuState): number => v.slot(V.DR6);
export const setGuestDr6Id = (v: VcpuState, id: number): void => v.setSlot(V.DR6, id);
/** vcpu->arch.switch_db_regs & KVM_DEBUGREG_WONT_EXIT: the guest's DR accesses do not exit. */
export const dbWontExit = (v: VcpuState): boolean => v.slot(V.DB_WONT_EXIT) !== 0;
export const setDbWontExit = (v: VcpuState, on: boolean): void => v.setSlot(V.DB_WONT_EXIT, on ? 1 : 0);
/** guest_fpu.fpstate->xfd and guest_fpu.xfd_err (value ids). */
export const guestXfdId = (v: VcpuState): number => v.slot(V.XFD);
export const setGuestXfdId = (v: VcpuState, id: number): void => v.setSlot(V.XFD, id);
export const guestXfdErrId = (v: VcpuState): number => v.slot(V.XFD_ERR);
export const setGuestXfdErrId = (v: VcpuState, id: number): void => v.setSlot(V.XFD_ERR, id);
/** vcpu->guest_xcr0_loaded (KVM up to v4.x). */
export const xcr0Loaded = (v: VcpuState): boolean => v.slot(V.XCR0_LOADED) !== 0;
export const setXcr0Loaded = (v: VcpuState, on: boolean): void => v.setSlot(V.XCR0_LOADED, on ? 1 : 0);
/** The vendor state (VMCS/VMCB) has not been written since KVM_CREATE_VCPU. */
export const vendorUninit = (v: VcpuState): boolean => v.slot(V.VENDOR_UNINIT) !== 0;
export const setVendorUninit = (v: VcpuState, on: boolean): void => v.setSlot(V.VENDOR_UNINIT, on ? 1 : 0);

/** Guest CR4.PKE (bit 22 of the cached CR4). */
export const guestCr4Pke = (v: VcpuState): boolean => (LOW[v.slot(V.CR4)]! & (1 << 22)) !== 0;
/** Guest XCR0.PKRU. */
export const guestXcr0Pkru = (v: VcpuState): boolean => (LOW[v.xcr0Id]! & (1 << 9)) !== 0;

// ---- fresh state --------------------------------------------------------------------------------

/**
 * What the features add to a fresh machine: the VMM's PKRU and CR4.PKE, DR6 at its RESET value, the
 * guest's architectural PKRU/DR6/CR3 (each vCPU's own part: initVcpuFeatures, called by newVcpu).
 */
export function initFeatureState(cfg: ResolvedConfig, st: MachineState): void {
  const f = cfg.features;
  const cpu = st.cpu;
  if (f & FEATURE_BIT.pkru) {
    cpu.pkruId = HOST_PKRU_ID;
    cpu.cr4Pke = true;
  }
  if (f & FEATURE_BIT.dr6) {
    cpu.dr6Id = DR6_INIT_ID;
    setExpectedDr6Id(st, DR6_INIT_ID);
  }
  if (f & FEATURE_BIT.cr3) setExpectedCr3Id(st, CR3_START_ID);
}

/** A new vCPU's feature state (kvm_arch_vcpu_create): DR6 at RESET, tile data in its fpstate when XFD is modelled. */
export function initVcpuFeatures(cfg: ResolvedConfig, st: MachineState, v: VcpuState): void {
  const f = cfg.features;
  if (f & FEATURE_BIT.dr6) setGuestDr6Id(v, DR6_INIT_ID);
  // fpu_enable_guest_xfd_features at KVM_SET_CPUID2: the guest fpstate grows the dynamic (tile) components.
  if (f & FEATURE_BIT.xfd && (cfg.supportedXcr0 & XFEATURE_MASK_XTILE) === XFEATURE_MASK_XTILE) {
    v.fpstate.features = v.fpstate.features | XFEATURE_MASK_XTILE;
  }
}

/** The guest's architectural PKRU/DR6/CR3 after RESET or INIT (SDM: PKRU 0 at RESET, DR6 fixed value, CR3 0). */
export function resetExpectedFeatureState(cfg: ResolvedConfig, st: MachineState, kind: "reset" | "init"): void {
  const f = cfg.features;
  if (f & FEATURE_BIT.pkru && kind === "reset") setExpectedPkruId(st, 0);
  if (f & FEATURE_BIT.dr6) setExpectedDr6Id(st, DR6_INIT_ID);
  if (f & FEATURE_BIT.cr3) setExpectedCr3Id(st, 0);
}

export const hex = (v: bigint): string => `0x${v.toString(16)}`;
export const hexId = (id: number): string => hex(val(id));
export { Tag };
