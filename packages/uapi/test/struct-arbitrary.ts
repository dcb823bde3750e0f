import fc from "fast-check";
import { elementSize, KVM_STRUCTS, type FieldSpec, type Scalar, type StructName, type StructValue } from "../src/structs/layout.js";

const scalar = (t: Scalar): fc.Arbitrary<number | bigint> =>
  t === "u64" ? fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) : fc.integer({ min: 0, max: 2 ** (8 * elementSize(t)) - 1 });

function element(type: FieldSpec["type"]): fc.Arbitrary<unknown> {
  return typeof type === "object" ? arbitraryStruct(type.struct as StructName) : scalar(type);
}

/** Any value of struct `name`, built from the layout table itself. */
export function arbitraryStruct<N extends StructName>(name: N): fc.Arbitrary<StructValue<N>> {
  const rec: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of KVM_STRUCTS[name].fields as readonly FieldSpec[]) {
    if (f.count === undefined) rec[f.name] = element(f.type);
    else if (f.type === "u8") rec[f.name] = fc.uint8Array({ minLength: f.count, maxLength: f.count });
    else rec[f.name] = fc.array(element(f.type), { minLength: f.count, maxLength: f.count });
  }
  return fc.record(rec) as unknown as fc.Arbitrary<StructValue<N>>;
}
