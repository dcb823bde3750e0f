/**
 * The one table of kvm.h struct layouts (x86-64, little-endian). Sizes and field offsets here drive
 * every codec in this folder and are checked against the system's <linux/kvm.h> by
 * test/layout.test.ts (a C program printing sizeof/offsetof), the way bindgen layout tests do.
 *
 * A field is a scalar, a fixed array of scalars (u8 arrays decode to Uint8Array), or a nested struct
 * (optionally an array of them). Bytes no field names (compiler padding, the rest of a union) decode
 * to nothing and encode as zero.
 */
export type Scalar = "u8" | "u16" | "u32" | "u64";

export interface FieldSpec {
  readonly name: string;
  readonly offset: number;
  readonly type: Scalar | { readonly struct: string };
  /** present for a fixed-size array */
  readonly count?: number;
  /** the C member is a union of this size holding the struct (kvm_run.s: 2048-byte padding union) */
  readonly unionSize?: number;
}

/** How the C test finds the struct: a named type, or an anonymous member of one (kvm_run.io). */
export interface CName {
  readonly type: string;
  readonly member?: string;
}

export interface StructSpec {
  readonly c: CName;
  readonly size: number;
  readonly fields: readonly FieldSpec[];
  /** a trailing flexible array member (kvm_cpuid2.entries, kvm_msrs.entries, kvm_xsave.extra) */
  readonly flex?: { readonly name: string; readonly offset: number; readonly type: Scalar | { readonly struct: string } };
}

const seg = { struct: "kvm_segment" } as const;
const dt = { struct: "kvm_dtable" } as const;

export const KVM_STRUCTS = {
  kvm_regs: {
    c: { type: "struct kvm_regs" },
    size: 144,
    // kvm_regs order, not enum kvm_reg order (docs/facts.md#kvm-regs)
    fields: [
      { name: "rax", offset: 0, type: "u64" },
      { name: "rbx", offset: 8, type: "u64" },
      { name: "rcx", offset: 16, type: "u64" },
      { name: "rdx", offset: 24, type: "u64" },
      { name: "rsi", offset: 32, type: "u64" },
      { name: "rdi", offset: 40, type: "u64" },
      { name: "rsp", offset: 48, type: "u64" },
      { name: "rbp", offset: 56, type: "u64" },
      { name: "r8", offset: 64, type: "u64" },
      { name: "r9", offset: 72, type: "u64" },
      { name: "r10", offset: 80, type: "u64" },
      { name: "r11", offset: 88, type: "u64" },
      { name: "r12", offset: 96, type: "u64" },
      { name: "r13", offset: 104, type: "u64" },
      { name: "r14", offset: 112, type: "u64" },
      { name: "r15", offset: 120, type: "u64" },
      { name: "rip", offset: 128, type: "u64" },
      { name: "rflags", offset: 136, type: "u64" },
    ],
  },
  kvm_segment: {
    c: { type: "struct kvm_segment" },
    size: 24,
    fields: [
      { name: "base", offset: 0, type: "u64" },
      { name: "limit", offset: 8, type: "u32" },
      { name: "selector", offset: 12, type: "u16" },
      { name: "type", offset: 14, type: "u8" },
      { name: "present", offset: 15, type: "u8" },
      { name: "dpl", offset: 16, type: "u8" },
      { name: "db", offset: 17, type: "u8" },
      { name: "s", offset: 18, type: "u8" },
      { name: "l", offset: 19, type: "u8" },
      { name: "g", offset: 20, type: "u8" },
      { name: "avl", offset: 21, type: "u8" },
      { name: "unusable", offset: 22, type: "u8" },
      { name: "padding", offset: 23, type: "u8" },
    ],
  },
  kvm_dtable: {
    c: { type: "struct kvm_dtable" },
    size: 16,
    fields: [
      { name: "base", offset: 0, type: "u64" },
      { name: "limit", offset: 8, type: "u16" },
      { name: "padding", offset: 10, type: "u16", count: 3 },
    ],
  },
  kvm_sregs: {
    c: { type: "struct kvm_sregs" },
    size: 312,
    fields: [
      { name: "cs", offset: 0, type: seg },
      { name: "ds", offset: 24, type: seg },
      { name: "es", offset: 48, type: seg },
      { name: "fs", offset: 72, type: seg },
      { name: "gs", offset: 96, type: seg },
      { name: "ss", offset: 120, type: seg },
      { name: "tr", offset: 144, type: seg },
      { name: "ldt", offset: 168, type: seg },
      { name: "gdt", offset: 192, type: dt },
      { name: "idt", offset: 208, type: dt },
      { name: "cr0", offset: 224, type: "u64" },
      { name: "cr2", offset: 232, type: "u64" },
      { name: "cr3", offset: 240, type: "u64" },
      { name: "cr4", offset: 248, type: "u64" },
      { name: "cr8", offset: 256, type: "u64" },
      { name: "efer", offset: 264, type: "u64" },
      { name: "apic_base", offset: 272, type: "u64" },
      // (KVM_NR_INTERRUPTS = 256 + 63) / 64 words: the pending external interrupt, one bit set at most
      { name: "interrupt_bitmap", offset: 280, type: "u64", count: 4 },
    ],
  },
  kvm_fpu: {
    c: { type: "struct kvm_fpu" },
    size: 416,
    fields: [
      { name: "fpr", offset: 0, type: "u8", count: 128 },
      { name: "fcw", offset: 128, type: "u16" },
      { name: "fsw", offset: 130, type: "u16" },
      { name: "ftwx", offset: 132, type: "u8" },
      { name: "pad1", offset: 133, type: "u8" },
      { name: "last_opcode", offset: 134, type: "u16" },
      { name: "last_ip", offset: 136, type: "u64" },
      { name: "last_dp", offset: 144, type: "u64" },
      { name: "xmm", offset: 152, type: "u8", count: 256 },
      { name: "mxcsr", offset: 408, type: "u32" },
      { name: "pad2", offset: 412, type: "u32" },
    ],
  },
  kvm_xsave: {
    c: { type: "struct kvm_xsave" },
    size: 4096,
    fields: [{ name: "region", offset: 0, type: "u8", count: 4096 }],
    // KVM_GET_XSAVE2 fills KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) bytes: region plus this tail
    flex: { name: "extra", offset: 4096, type: "u32" },
  },
  kvm_xcr: {
    c: { type: "struct kvm_xcr" },
    size: 16,
    fields: [
      { name: "xcr", offset: 0, type: "u32" },
      { name: "reserved", offset: 4, type: "u32" },
      { name: "value", offset: 8, type: "u64" },
    ],
  },
  kvm_xcrs: {
    c: { type: "struct kvm_xcrs" },
    size: 392,
    fields: [
      { name: "nr_xcrs", offset: 0, type: "u32" },
      { name: "flags", offset: 4, type: "u32" },
      // KVM_MAX_XCRS = 16
      { name: "xcrs", offset: 8, type: { struct: "kvm_xcr" }, count: 16 },
      { name: "padding", offset: 264, type: "u64", count: 16 },
    ],
  },
  kvm_cpuid_entry2: {
    c: { type: "struct kvm_cpuid_entry2" },
    size: 40,
    fields: [
      { name: "function", offset: 0, type: "u32" },
      { name: "index", offset: 4, type: "u32" },
      { name: "flags", offset: 8, type: "u32" },
      { name: "eax", offset: 12, type: "u32" },
      { name: "ebx", offset: 16, type: "u32" },
      { name: "ecx", offset: 20, type: "u32" },
      { name: "edx", offset: 24, type: "u32" },
      { name: "padding", offset: 28, type: "u32", count: 3 },
    ],
  },
  kvm_cpuid2: {
    c: { type: "struct kvm_cpuid2" },
    size: 8,
    fields: [
      { name: "nent", offset: 0, type: "u32" },
      { name: "padding", offset: 4, type: "u32" },
    ],
    flex: { name: "entries", offset: 8, type: { struct: "kvm_cpuid_entry2" } },
  },
  kvm_msr_entry: {
    c: { type: "struct kvm_msr_entry" },
    size: 16,
    fields: [
      { name: "index", offset: 0, type: "u32" },
      { name: "reserved", offset: 4, type: "u32" },
      { name: "data", offset: 8, type: "u64" },
    ],
  },
  kvm_msrs: {
    c: { type: "struct kvm_msrs" },
    size: 8,
    fields: [
      { name: "nmsrs", offset: 0, type: "u32" },
      { name: "pad", offset: 4, type: "u32" },
    ],
    flex: { name: "entries", offset: 8, type: { struct: "kvm_msr_entry" } },
  },
  kvm_vcpu_events_exception: {
    c: { type: "struct kvm_vcpu_events", member: "exception" },
    size: 8,
    fields: [
      { name: "injected", offset: 0, type: "u8" },
      { name: "nr", offset: 1, type: "u8" },
      { name: "has_error_code", offset: 2, type: "u8" },
      { name: "pending", offset: 3, type: "u8" },
      { name: "error_code", offset: 4, type: "u32" },
    ],
  },
  kvm_vcpu_events_interrupt: {
    c: { type: "struct kvm_vcpu_events", member: "interrupt" },
    size: 4,
    fields: [
      { name: "injected", offset: 0, type: "u8" },
      { name: "nr", offset: 1, type: "u8" },
      { name: "soft", offset: 2, type: "u8" },
      { name: "shadow", offset: 3, type: "u8" },
    ],
  },
  kvm_vcpu_events_nmi: {
    c: { type: "struct kvm_vcpu_events", member: "nmi" },
    size: 4,
    fields: [
      { name: "injected", offset: 0, type: "u8" },
      { name: "pending", offset: 1, type: "u8" },
      { name: "masked", offset: 2, type: "u8" },
      { name: "pad", offset: 3, type: "u8" },
    ],
  },
  kvm_vcpu_events_smi: {
    c: { type: "struct kvm_vcpu_events", member: "smi" },
    size: 4,
    fields: [
      { name: "smm", offset: 0, type: "u8" },
      { name: "pending", offset: 1, type: "u8" },
      { name: "smm_inside_nmi", offset: 2, type: "u8" },
      { name: "latched_init", offset: 3, type: "u8" },
    ],
  },
  kvm_vcpu_events: {
    c: { type: "struct kvm_vcpu_events" },
    size: 64,
    fields: [
      { name: "exception", offset: 0, type: { struct: "kvm_vcpu_events_exception" } },
      { name: "interrupt", offset: 8, type: { struct: "kvm_vcpu_events_interrupt" } },
      { name: "nmi", offset: 12, type: { struct: "kvm_vcpu_events_nmi" } },
      { name: "sipi_vector", offset: 16, type: "u32" },
      { name: "flags", offset: 20, type: "u32" },
      { name: "smi", offset: 24, type: { struct: "kvm_vcpu_events_smi" } },
      // triple_fault is a one-byte anonymous struct { pending }; kept as its byte
      { name: "triple_fault", offset: 28, type: "u8" },
      { name: "reserved", offset: 29, type: "u8", count: 26 },
      { name: "exception_has_payload", offset: 55, type: "u8" },
      { name: "exception_payload", offset: 56, type: "u64" },
    ],
  },
  kvm_device_attr: {
    c: { type: "struct kvm_device_attr" },
    size: 24,
    fields: [
      { name: "flags", offset: 0, type: "u32" },
      { name: "group", offset: 4, type: "u32" },
      { name: "attr", offset: 8, type: "u64" },
      { name: "addr", offset: 16, type: "u64" },
    ],
  },
  kvm_debugregs: {
    c: { type: "struct kvm_debugregs" },
    size: 128,
    fields: [
      { name: "db", offset: 0, type: "u64", count: 4 },
      { name: "dr6", offset: 32, type: "u64" },
      { name: "dr7", offset: 40, type: "u64" },
      { name: "flags", offset: 48, type: "u64" },
      { name: "reserved", offset: 56, type: "u64", count: 9 },
    ],
  },
  kvm_sync_regs: {
    c: { type: "struct kvm_sync_regs" },
    size: 520,
    fields: [
      { name: "regs", offset: 0, type: { struct: "kvm_regs" } },
      { name: "sregs", offset: 144, type: { struct: "kvm_sregs" } },
      { name: "events", offset: 456, type: { struct: "kvm_vcpu_events" } },
    ],
  },
  kvm_userspace_memory_region: {
    c: { type: "struct kvm_userspace_memory_region" },
    size: 32,
    fields: [
      { name: "slot", offset: 0, type: "u32" },
      { name: "flags", offset: 4, type: "u32" },
      { name: "guest_phys_addr", offset: 8, type: "u64" },
      { name: "memory_size", offset: 16, type: "u64" },
      { name: "userspace_addr", offset: 24, type: "u64" },
    ],
  },
  /**
   * The fixed head and tail of struct kvm_run that userspace uses on x86; the 256-byte exit union at
   * offset 32 is read through the kvm_run_* entries below, its member chosen by exit_reason.
   */
  kvm_run: {
    c: { type: "struct kvm_run" },
    size: 2352,
    fields: [
      { name: "request_interrupt_window", offset: 0, type: "u8" },
      { name: "immediate_exit", offset: 1, type: "u8" },
      { name: "exit_reason", offset: 8, type: "u32" },
      { name: "ready_for_interrupt_injection", offset: 12, type: "u8" },
      { name: "if_flag", offset: 13, type: "u8" },
      { name: "flags", offset: 14, type: "u16" },
      { name: "cr8", offset: 16, type: "u64" },
      { name: "apic_base", offset: 24, type: "u64" },
      { name: "kvm_valid_regs", offset: 288, type: "u64" },
      { name: "kvm_dirty_regs", offset: 296, type: "u64" },
      // SYNC_REGS_SIZE_BYTES = 2048: the union reserves room for kvm_sync_regs to grow
      { name: "s", offset: 304, type: { struct: "kvm_sync_regs" }, unionSize: 2048 },
    ],
  },
  kvm_run_hw: {
    c: { type: "struct kvm_run", member: "hw" },
    size: 8,
    fields: [{ name: "hardware_exit_reason", offset: 0, type: "u64" }],
  },
  kvm_run_fail_entry: {
    c: { type: "struct kvm_run", member: "fail_entry" },
    size: 16,
    fields: [
      { name: "hardware_entry_failure_reason", offset: 0, type: "u64" },
      { name: "cpu", offset: 8, type: "u32" },
    ],
  },
  kvm_run_ex: {
    c: { type: "struct kvm_run", member: "ex" },
    size: 8,
    fields: [
      { name: "exception", offset: 0, type: "u32" },
      { name: "error_code", offset: 4, type: "u32" },
    ],
  },
  kvm_run_io: {
    c: { type: "struct kvm_run", member: "io" },
    size: 16,
    fields: [
      { name: "direction", offset: 0, type: "u8" },
      { name: "size", offset: 1, type: "u8" },
      { name: "port", offset: 2, type: "u16" },
      { name: "count", offset: 4, type: "u32" },
      // relative to the start of kvm_run; the bytes usually sit in the second page of the mapping
      { name: "data_offset", offset: 8, type: "u64" },
    ],
  },
  kvm_run_mmio: {
    c: { type: "struct kvm_run", member: "mmio" },
    size: 24,
    fields: [
      { name: "phys_addr", offset: 0, type: "u64" },
      { name: "data", offset: 8, type: "u8", count: 8 },
      { name: "len", offset: 16, type: "u32" },
      { name: "is_write", offset: 20, type: "u8" },
    ],
  },
  kvm_run_internal: {
    c: { type: "struct kvm_run", member: "internal" },
    size: 136,
    fields: [
      { name: "suberror", offset: 0, type: "u32" },
      { name: "ndata", offset: 4, type: "u32" },
      { name: "data", offset: 8, type: "u64", count: 16 },
    ],
  },
} as const satisfies Record<string, StructSpec>;

export type StructName = keyof typeof KVM_STRUCTS;

/** Offset of the exit-information union inside struct kvm_run (checked against the header). */
export const KVM_RUN_EXIT_UNION_OFFSET = 32;

type ScalarValue<T> = T extends "u64" ? bigint : number;
type ElementValue<T> = T extends { readonly struct: infer S extends StructName } ? StructValue<S> : ScalarValue<T>;
type FieldValue<F> = F extends { readonly type: "u8"; readonly count: number }
  ? Uint8Array
  : F extends { readonly type: infer T; readonly count: number }
    ? ElementValue<T>[]
    : F extends { readonly type: infer T }
      ? ElementValue<T>
      : never;

/** The decoded JS shape of a struct in the table: u64 → bigint, u8/u16/u32 → number, u8[] → Uint8Array. */
export type StructValue<N extends StructName> = {
  -readonly [F in (typeof KVM_STRUCTS)[N]["fields"][number] as F["name"]]: FieldValue<F>;
};

export function structSpec(name: StructName): StructSpec {
  return KVM_STRUCTS[name];
}

/** Size in bytes of one element of a field's type. */
export function elementSize(type: FieldSpec["type"]): number {
  if (typeof type === "object") return structSpec(type.struct as StructName).size;
  return SCALAR_SIZE[type];
}

export const SCALAR_SIZE: Readonly<Record<Scalar, number>> = { u8: 1, u16: 2, u32: 4, u64: 8 };
