/**
 * GPR copies in vendor state (VMSA, GHCB, host save area): per register a "value" field
 * `<prefix>.<r>` and a "tag" field `<prefix>.<r>.tag` holding its provenance tag (the tag itself is
 * the slot's content: `vendorId`/`vendorSetId`).
 */
import { defineVendorFields, type VendorField, type VendorFieldKind } from "@kvmx/core";

export interface GprFields {
  /** GPR index → value field id (undefined for a register the area has no field for). */
  readonly value: readonly VendorField[];
  /** GPR index → tag field id. */
  readonly tag: readonly VendorField[];
  /** Both fields of every register, for VendorOps.vendorFields. */
  readonly all: readonly VendorField[];
}

export function defineGprFields(prefix: string, regs: readonly number[]): GprFields {
  const spec: Record<string, VendorFieldKind> = {};
  for (const r of regs) {
    spec[`${prefix}.${r}`] = "value";
    spec[`${prefix}.${r}.tag`] = "tag";
  }
  const ids: Record<string, VendorField> = defineVendorFields(spec);
  const value: VendorField[] = [];
  const tag: VendorField[] = [];
  const all: VendorField[] = [];
  for (const r of regs) {
    value[r] = ids[`${prefix}.${r}`]!;
    tag[r] = ids[`${prefix}.${r}.tag`]!;
    all.push(value[r], tag[r]);
  }
  return { value, tag, all };
}

/** r in from..to-1. */
export const gprRange = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
