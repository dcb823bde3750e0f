import type { KvmDebugregs, KvmSegment, KvmSregs } from "../api.js";
import { zeroStruct } from "../structs/codec.js";

/**
 * What a fresh vCPU reports before the VMM touches it (kvm_vcpu_reset and the vendor's reset, SDM
 * Vol. 3 §10.1.1 "Processor State After Reset"): real mode at F000:FFF0, CR0 = CD|NW|ET, EFER 0.
 * The segment types are the vendor's: VMX sets the accessed bits (CS 0xb, data 0x3, TR a busy
 * 32-bit TSS 0xb); SVM's init_vmcb does not (CS 0xa, data 0x2) and starts TR as a busy 16-bit TSS (0x3).
 */
const seg = (selector: number, base: bigint, type: number, s: number): KvmSegment => ({
  base,
  limit: 0xffff,
  selector,
  type,
  present: 1,
  dpl: 0,
  db: 0,
  s,
  l: 0,
  g: 0,
  avl: 0,
  unusable: 0,
  padding: 0,
});

/** The architectural reset state of kvm_sregs; `bsp` sets IA32_APIC_BASE.BSP (vCPU 0). */
export function resetSregs(bsp: boolean, vendor: "amd" | "intel" = "intel"): KvmSregs {
  const amd = vendor === "amd";
  const data = seg(0, 0n, amd ? 0x2 : 0x3, 1);
  return {
    ...zeroStruct("kvm_sregs"),
    cs: seg(0xf000, 0xffff0000n, amd ? 0xa : 0xb, 1),
    ds: data,
    es: { ...data },
    fs: { ...data },
    gs: { ...data },
    ss: { ...data },
    tr: seg(0, 0n, amd ? 0x3 : 0xb, 0),
    ldt: seg(0, 0n, 0x2, 0),
    gdt: { base: 0n, limit: 0xffff, padding: [0, 0, 0] },
    idt: { base: 0n, limit: 0xffff, padding: [0, 0, 0] },
    cr0: 0x6000_0010n,
    // APIC_DEFAULT_PHYS_BASE | MSR_IA32_APICBASE_ENABLE | (BSP)
    apic_base: 0xfee0_0000n | 0x800n | (bsp ? 0x100n : 0n),
  };
}

/** kvm_vcpu_reset writes CPUID.1:EAX (family/model/stepping) to RDX, or 0x600 when the vCPU has no CPUID yet. */
export const RESET_RDX_NO_CPUID = 0x600n;

/** DR6 and DR7 at reset (DR6_ACTIVE_LOW 0xffff0ff0, DR7_FIXED_1 0x400). */
export function resetDebugregs(): KvmDebugregs {
  return { ...zeroStruct("kvm_debugregs"), dr6: 0xffff_0ff0n, dr7: 0x400n };
}
