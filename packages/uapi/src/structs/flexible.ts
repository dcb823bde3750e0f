import { KvmError, UapiDecodeError, UapiEncodeError } from "../errors.js";
import { decodeStruct, encodeStructInto } from "./codec.js";
import { KVM_STRUCTS, type StructValue } from "./layout.js";

/**
 * The flexible-array structs: a fixed header plus a caller-sized tail (rust-vmm's FamStruct idea).
 * The count in the header must fit the buffer, or decoding fails.
 */
export type KvmCpuidEntry2 = StructValue<"kvm_cpuid_entry2">;
export type KvmMsrEntry = StructValue<"kvm_msr_entry">;

const CPUID2_HEADER = KVM_STRUCTS.kvm_cpuid2.size;
const CPUID_ENTRY = KVM_STRUCTS.kvm_cpuid_entry2.size;
const MSRS_HEADER = KVM_STRUCTS.kvm_msrs.size;
const MSR_ENTRY = KVM_STRUCTS.kvm_msr_entry.size;
/** sizeof(struct kvm_xsave): the legacy 4096-byte KVM_GET_XSAVE region. */
export const KVM_XSAVE_REGION_SIZE: number = KVM_STRUCTS.kvm_xsave.size;

/** Bytes needed for a kvm_cpuid2 holding `capacity` entries. */
export const kvmCpuid2Size = (capacity: number): number => CPUID2_HEADER + capacity * CPUID_ENTRY;
/** Bytes needed for a kvm_msrs holding `capacity` entries. */
export const kvmMsrsSize = (capacity: number): number => MSRS_HEADER + capacity * MSR_ENTRY;

function checkCount(struct: string, count: number, max: number): void {
  if (!Number.isSafeInteger(count) || count < 0 || count > max) {
    throw new UapiEncodeError(struct, `entry count ${count} outside 0..${max}`);
  }
}

/**
 * Encodes a kvm_cpuid2 whose buffer has room for `capacity` entries (nent = capacity when
 * `entries` is empty, as KVM_GET_SUPPORTED_CPUID wants; otherwise nent = entries.length).
 */
export function encodeKvmCpuid2(entries: readonly KvmCpuidEntry2[], capacity = entries.length): Uint8Array {
  checkCount("kvm_cpuid2", capacity, 0xffff_ffff);
  if (entries.length > capacity) throw new UapiEncodeError("kvm_cpuid2", `${entries.length} entries exceed capacity ${capacity}`);
  const out = new Uint8Array(kvmCpuid2Size(capacity));
  const nent = entries.length === 0 ? capacity : entries.length;
  encodeStructInto("kvm_cpuid2", { nent, padding: 0 }, out, 0);
  entries.forEach((e, i) => encodeStructInto("kvm_cpuid_entry2", e, out, CPUID2_HEADER + i * CPUID_ENTRY));
  return out;
}

/** KVM_MAX_CPUID_ENTRIES: KVM clamps a larger nent to it and never writes more entries. */
export const KVM_MAX_CPUID_ENTRIES = 256;

/**
 * Before handing KVM a caller's kvm_cpuid2: it must hold the entries its nent announces (up to
 * KVM_MAX_CPUID_ENTRIES), or KVM could write past its end. KvmError bad-input otherwise.
 */
export function checkCpuidBuffer(ioctl: string, buf: Uint8Array): void {
  if (buf.byteLength < CPUID2_HEADER) throw new KvmError(`${ioctl}: a kvm_cpuid2 needs at least ${CPUID2_HEADER} bytes, got ${buf.byteLength}`, 22, "bad-input");
  const nent = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(0, true);
  const need = kvmCpuid2Size(Math.min(nent, KVM_MAX_CPUID_ENTRIES));
  if (buf.byteLength < need) throw new KvmError(`${ioctl}: nent ${nent} needs ${need} bytes, the buffer has ${buf.byteLength}`, 22, "bad-input");
}

/** Decodes a kvm_cpuid2: header nent, then nent entries, all of which must be inside the buffer. */
export function decodeKvmCpuid2(bytes: Uint8Array): KvmCpuidEntry2[] {
  const { nent } = decodeStruct("kvm_cpuid2", bytes);
  const room = Math.floor((bytes.byteLength - CPUID2_HEADER) / CPUID_ENTRY);
  if (nent > room) throw new UapiDecodeError("kvm_cpuid2", `nent ${nent} exceeds the ${room} entries the buffer holds`);
  const out: KvmCpuidEntry2[] = new Array(nent);
  for (let i = 0; i < nent; i++) out[i] = decodeStruct("kvm_cpuid_entry2", bytes, CPUID2_HEADER + i * CPUID_ENTRY);
  return out;
}

/** Encodes a kvm_msrs; for KVM_GET_MSRS pass entries with the wanted indices and data 0n. */
export function encodeKvmMsrs(entries: readonly KvmMsrEntry[]): Uint8Array {
  const out = new Uint8Array(kvmMsrsSize(entries.length));
  encodeStructInto("kvm_msrs", { nmsrs: entries.length, pad: 0 }, out, 0);
  entries.forEach((e, i) => encodeStructInto("kvm_msr_entry", e, out, MSRS_HEADER + i * MSR_ENTRY));
  return out;
}

/** Decodes a kvm_msrs; `count` (what KVM_GET_MSRS returned) may limit the entries read to fewer than nmsrs. */
export function decodeKvmMsrs(bytes: Uint8Array, count?: number): KvmMsrEntry[] {
  const { nmsrs } = decodeStruct("kvm_msrs", bytes);
  const room = Math.floor((bytes.byteLength - MSRS_HEADER) / MSR_ENTRY);
  if (nmsrs > room) throw new UapiDecodeError("kvm_msrs", `nmsrs ${nmsrs} exceeds the ${room} entries the buffer holds`);
  const n = count === undefined ? nmsrs : count;
  if (!Number.isSafeInteger(n) || n < 0 || n > nmsrs) throw new UapiDecodeError("kvm_msrs", `count ${n} outside 0..${nmsrs}`);
  const out: KvmMsrEntry[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = decodeStruct("kvm_msr_entry", bytes, MSRS_HEADER + i * MSR_ENTRY);
  return out;
}

/** A kvm_xsave as the kernel fills it: the 4096-byte region and the KVM_GET_XSAVE2 tail. */
export interface KvmXsave {
  region: Uint8Array;
  extra: Uint8Array;
}

/**
 * Splits a KVM_GET_XSAVE(2) buffer of `size` bytes (4096, or KVM_CAP_XSAVE2's value); the size must
 * be at least 4096 and a multiple of 4 (the tail is __u32 extra[]).
 */
export function decodeKvmXsave(bytes: Uint8Array, size: number = KVM_XSAVE_REGION_SIZE): KvmXsave {
  if (!Number.isSafeInteger(size) || size < KVM_XSAVE_REGION_SIZE || size % 4 !== 0) {
    throw new UapiDecodeError("kvm_xsave", `size ${size} is not a multiple of 4 of at least ${KVM_XSAVE_REGION_SIZE}`);
  }
  if (!(bytes instanceof Uint8Array)) throw new UapiDecodeError("kvm_xsave", "input is not a byte buffer");
  if (bytes.byteLength < size) throw new UapiDecodeError("kvm_xsave", `truncated: needs ${size} bytes, buffer has ${bytes.byteLength}`);
  return {
    region: bytes.slice(0, KVM_XSAVE_REGION_SIZE),
    extra: bytes.slice(KVM_XSAVE_REGION_SIZE, size),
  };
}

/** Joins region and tail into the buffer KVM_SET_XSAVE reads. */
export function encodeKvmXsave(x: KvmXsave): Uint8Array {
  if (!(x.region instanceof Uint8Array) || x.region.byteLength !== KVM_XSAVE_REGION_SIZE) {
    throw new UapiEncodeError("kvm_xsave", `region must be ${KVM_XSAVE_REGION_SIZE} bytes`);
  }
  if (!(x.extra instanceof Uint8Array) || x.extra.byteLength % 4 !== 0) {
    throw new UapiEncodeError("kvm_xsave", "extra must be a Uint8Array whose length is a multiple of 4");
  }
  const out = new Uint8Array(KVM_XSAVE_REGION_SIZE + x.extra.byteLength);
  out.set(x.region, 0);
  out.set(x.extra, KVM_XSAVE_REGION_SIZE);
  return out;
}

/** The bytes a vCPU GET ioctl writes: sizeof its struct, or KVM_CAP_XSAVE2 for KVM_GET_XSAVE2. */
export function getIntoSize(ioctl: "KVM_GET_REGS" | "KVM_GET_SREGS" | "KVM_GET_FPU" | "KVM_GET_XSAVE" | "KVM_GET_XSAVE2" | "KVM_GET_XCRS" | "KVM_GET_VCPU_EVENTS" | "KVM_GET_DEBUGREGS", xsave2Size: () => number): number {
  switch (ioctl) {
    case "KVM_GET_XSAVE2":
      return Math.max(xsave2Size(), KVM_XSAVE_REGION_SIZE);
    case "KVM_GET_XSAVE":
      return KVM_XSAVE_REGION_SIZE;
    case "KVM_GET_REGS":
      return KVM_STRUCTS.kvm_regs.size;
    case "KVM_GET_SREGS":
      return KVM_STRUCTS.kvm_sregs.size;
    case "KVM_GET_FPU":
      return KVM_STRUCTS.kvm_fpu.size;
    case "KVM_GET_XCRS":
      return KVM_STRUCTS.kvm_xcrs.size;
    case "KVM_GET_VCPU_EVENTS":
      return KVM_STRUCTS.kvm_vcpu_events.size;
    case "KVM_GET_DEBUGREGS":
      return KVM_STRUCTS.kvm_debugregs.size;
  }
}
