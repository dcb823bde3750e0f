import { KVM_STRUCTS, type FieldSpec, type StructName } from "../structs/layout.js";

/**
 * kvm.h structs as "a.b.c → value" pairs, from the one layout table: what a differential scenario
 * may set in a struct (set-sregs { cr4: …, cs.l: … }) and how a struct read back is written down
 * as observations. Scalars are hex ("0x1f80"), u8 arrays hex bytes, other arrays one key per element.
 */
export type FieldKind = { readonly scalar: "u8" | "u16" | "u32" | "u64"; readonly bytes?: number };

type Loose = Record<string, unknown>;

function fieldOf(struct: string, name: string): FieldSpec | undefined {
  return (KVM_STRUCTS as unknown as Record<string, { fields: readonly FieldSpec[] }>)[struct]?.fields.find((f) => f.name === name);
}

/**
 * What a dotted path names inside `struct`: a scalar (possibly an element "interrupt_bitmap.2"), or
 * a u8 array as a whole ("xmm", `bytes` long). Undefined when the path names nothing settable.
 */
export function fieldKind(struct: StructName, path: string): FieldKind | undefined {
  const parts = path.split(".");
  let current: string = struct;
  for (let i = 0; i < parts.length; i++) {
    const f = fieldOf(current, parts[i]!);
    if (!f) return undefined;
    if (typeof f.type === "object") {
      if (f.count !== undefined) return undefined;
      current = f.type.struct;
      continue;
    }
    const rest = parts.length - i - 1;
    if (f.count === undefined) return rest === 0 ? { scalar: f.type } : undefined;
    if (f.type === "u8" && rest === 0) return { scalar: "u8", bytes: f.count };
    if (rest === 1 && /^\d+$/.test(parts[i + 1]!) && Number(parts[i + 1]) < f.count) return { scalar: f.type };
    return undefined;
  }
  return undefined;
}

/** Every settable path of a struct (for error messages). */
export function fieldPaths(struct: string, prefix = ""): string[] {
  const spec = (KVM_STRUCTS as unknown as Record<string, { fields: readonly FieldSpec[] }>)[struct];
  return (spec?.fields ?? []).flatMap((f) => {
    const p = `${prefix}${f.name}`;
    if (typeof f.type === "object") return f.count === undefined ? fieldPaths(f.type.struct, `${p}.`) : [];
    return [p];
  });
}

/** A copy of `value` with the field at `path` set (a bigint for scalars, bytes for a u8 array). */
export function setField<T>(value: T, path: string, v: bigint | Uint8Array): T {
  const parts = path.split(".");
  const root: Loose = structuredClone(value) as Loose;
  let obj: Loose = root;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = obj[parts[i]!];
    if (Array.isArray(next)) {
      const idx = Number(parts[i + 1]);
      next[idx] = typeof next[idx] === "bigint" ? (v as bigint) : Number(v as bigint);
      return root as T;
    }
    obj = next as Loose;
  }
  const key = parts.at(-1)!;
  const old = obj[key];
  if (old instanceof Uint8Array) {
    const b = old.slice();
    b.set((v as Uint8Array).subarray(0, b.length));
    obj[key] = b;
  } else {
    obj[key] = typeof old === "bigint" ? (v as bigint) : Number(v as bigint);
  }
  return root as T;
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** The struct as observations: `prefix.path` → text. */
export function flattenFields(value: unknown, prefix: string, out: Record<string, string>): void {
  if (value instanceof Uint8Array) {
    out[prefix] = Buffer.from(value).toString("hex");
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => flattenFields(v, `${prefix}.${i}`, out));
  } else if (typeof value === "bigint" || typeof value === "number") {
    out[prefix] = hex(value);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) flattenFields(v, `${prefix}.${k}`, out);
  }
}
