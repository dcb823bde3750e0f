/**
 * Vendor state (VMCS fields, VMCB, VMSA, TD state, GHCB) as named slots of the packed state. A
 * backend declares its fields once, at module load, with what kind of content each holds; the
 * Machine's state layout reserves a slot for every field its backend lists (VendorOps.vendorFields).
 *
 * The kind matters to the checker's state fingerprint (state-layout.ts):
 *  - "control": a value the model decides on (a control field, a mode flag): compared exactly;
 *  - "value": a copy of a guest register (VMSA/GHCB/TDVPS GPRs): data, compared by value equality;
 *  - "tag": the provenance tag of a "value" field (provenance.ts), stored as the raw tag number
 *    (vendorSetId/vendorId), not as a value id;
 *  - "exit-info": written by every VM-exit before anything reads it (exit reason, qualification,
 *    instruction length/information, the guest RIP/RSP the exit saved) — meaningless between events,
 *    so it is left out of the fingerprint.
 *  - "rip": a guest RIP kept for a later entry (vmcs12's, a parked VMCS's, the TDVPS's). In the POST
 *    register layout it is left out of the fingerprint: the guest's programs do not depend on where
 *    they sit, every event's first guest entry starts at its code, and a RIP only ever meets a RIP
 *    derived from it in the same event (the resume check of sites.ts runGuest); so its value decides
 *    nothing across events (docs/model.md#rip-values). In PRE, where KVM_GET_REGS can read it into
 *    regs[] (RIP beyond the u32 bitmaps), it is compared exactly.
 */
import { ModelBugError } from "../errors.js";

export type VendorFieldKind = "control" | "value" | "tag" | "exit-info" | "rip";

export interface VendorFieldSpec {
  readonly id: number;
  readonly name: string;
  readonly kind: VendorFieldKind;
}

const specs: VendorFieldSpec[] = [];
const byName = new Map<string, VendorFieldSpec>();

/** A vendor field id (an index into the registry). */
export type VendorField = number;

/**
 * Declares vendor fields (idempotent per name: declaring a name twice with the same kind returns the
 * same id) and returns their ids by name.
 */
export function defineVendorFields<const N extends string>(fields: Record<N, VendorFieldKind>): { readonly [K in N]: VendorField } {
  const out = {} as Record<N, VendorField>;
  for (const name of Object.keys(fields) as N[]) {
    const kind = fields[name];
    const old = byName.get(name);
    if (old) {
      if (old.kind !== kind) throw new ModelBugError(`vendor field ${name} declared as ${old.kind} and as ${kind}`);
      out[name] = old.id;
      continue;
    }
    const spec: VendorFieldSpec = { id: specs.length, name, kind };
    specs.push(spec);
    byName.set(name, spec);
    out[name] = spec.id;
  }
  return out;
}

export function vendorFieldSpec(id: VendorField): VendorFieldSpec {
  const s = specs[id];
  if (!s) throw new ModelBugError(`unknown vendor field id ${id}`);
  return s;
}

export function vendorFieldByName(name: string): VendorFieldSpec | undefined {
  return byName.get(name);
}

/** Every declared field, in declaration order. */
export const allVendorFields = (): readonly VendorFieldSpec[] => specs;
