import { UapiDecodeError, UapiEncodeError } from "../errors.js";
import { decodeStruct, encodeStruct, zeroStruct } from "./codec.js";
import type { StructValue } from "./layout.js";

/** KVM_MAX_XCRS: the fixed capacity of kvm_xcrs.xcrs. */
export const KVM_MAX_XCRS = 16;

export type KvmXcr = StructValue<"kvm_xcr">;

/** kvm_xcrs as a list: only the first nr_xcrs entries mean anything. */
export interface KvmXcrs {
  flags: number;
  xcrs: KvmXcr[];
}

/** Decodes kvm_xcrs and keeps its first nr_xcrs entries; nr_xcrs above KVM_MAX_XCRS is malformed. */
export function decodeKvmXcrs(bytes: Uint8Array): KvmXcrs {
  const raw = decodeStruct("kvm_xcrs", bytes);
  if (raw.nr_xcrs > KVM_MAX_XCRS) throw new UapiDecodeError("kvm_xcrs", `nr_xcrs ${raw.nr_xcrs} exceeds KVM_MAX_XCRS ${KVM_MAX_XCRS}`);
  return { flags: raw.flags, xcrs: raw.xcrs.slice(0, raw.nr_xcrs) };
}

/** Encodes a kvm_xcrs from a list of at most KVM_MAX_XCRS entries (the rest zero). */
export function encodeKvmXcrs(x: KvmXcrs): Uint8Array {
  if (!Array.isArray(x.xcrs) || x.xcrs.length > KVM_MAX_XCRS) {
    throw new UapiEncodeError("kvm_xcrs", `at most ${KVM_MAX_XCRS} entries`);
  }
  const raw = zeroStruct("kvm_xcrs");
  raw.flags = x.flags;
  raw.nr_xcrs = x.xcrs.length;
  x.xcrs.forEach((e, i) => (raw.xcrs[i] = e));
  return encodeStruct("kvm_xcrs", raw);
}
