import { describe, expect, it } from "vitest";
import { elementSize, KVM_RUN_EXIT_UNION_OFFSET, KVM_STRUCTS, type FieldSpec, type StructName, type StructSpec } from "../src/structs/layout.js";
import { cHeaderUnavailableReason, parseLines, runC } from "./c-harness.js";

const entries = Object.entries(KVM_STRUCTS) as [StructName, StructSpec][];

const fieldBytes = (f: FieldSpec): number => elementSize(f.type) * (f.count ?? 1);

describe("layout table is self-consistent", () => {
  it.each(entries)("%s: fields ascend, do not overlap, fit the size and are naturally aligned", (_name, spec) => {
    let end = 0;
    for (const f of spec.fields) {
      expect(f.offset, f.name).toBeGreaterThanOrEqual(end);
      const scalarAlign = typeof f.type === "string" ? elementSize(f.type) : 1;
      expect(f.offset % scalarAlign, `${f.name} alignment`).toBe(0);
      end = f.offset + (f.unionSize ?? fieldBytes(f));
    }
    expect(end).toBeLessThanOrEqual(spec.size);
    if (spec.flex) expect(spec.flex.offset).toBe(spec.size);
  });
});

/** C expression for the struct's type and for a member path inside it. */
function cExprs(spec: StructSpec): { sizeExpr: string; offsetExpr: (field: string) => string; fieldSizeExpr: (field: string) => string } {
  const t = spec.c.type;
  const m = spec.c.member;
  if (m === undefined) {
    return {
      sizeExpr: `sizeof(${t})`,
      offsetExpr: (f) => `offsetof(${t}, ${f})`,
      fieldSizeExpr: (f) => `sizeof(((${t} *)0)->${f})`,
    };
  }
  return {
    sizeExpr: `sizeof(((${t} *)0)->${m})`,
    offsetExpr: (f) => `(offsetof(${t}, ${m}.${f}) - offsetof(${t}, ${m}))`,
    fieldSizeExpr: (f) => `sizeof(((${t} *)0)->${m}.${f})`,
  };
}

const reason = cHeaderUnavailableReason();
if (reason) console.warn(`layout vs <linux/kvm.h> skipped: ${reason}`);

describe.skipIf(reason !== undefined)("layout table matches <linux/kvm.h> (gcc sizeof/offsetof)", () => {
  const lines: string[] = [];
  for (const [name, spec] of entries) {
    const c = cExprs(spec);
    lines.push(`  printf("${name} %zu\\n", ${c.sizeExpr});`);
    for (const f of spec.fields) {
      // triple_fault is a one-byte struct in C; its byte is the member `pending`
      const member = name === "kvm_vcpu_events" && f.name === "triple_fault" ? "triple_fault.pending" : f.name;
      lines.push(`  printf("${name}.${f.name}@ %zu\\n", (size_t)(${c.offsetExpr(member)}));`);
      lines.push(`  printf("${name}.${f.name}# %zu\\n", ${c.fieldSizeExpr(member)});`);
    }
    if (spec.flex) lines.push(`  printf("${name}.${spec.flex.name}@ %zu\\n", (size_t)(${c.offsetExpr(spec.flex.name)}));`);
  }
  lines.push(`  printf("exit_union@ %zu\\n", offsetof(struct kvm_run, io));`);
  const program = `#include <stdio.h>\n#include <stddef.h>\n#include <linux/kvm.h>\nint main(void) {\n${lines.join("\n")}\n  return 0;\n}\n`;
  const got = reason === undefined ? parseLines(runC(program)) : new Map<string, string>();

  it.each(entries)("%s: sizeof and every field offset/size", (name, spec) => {
    expect(Number(got.get(name)), `sizeof ${name}`).toBe(spec.size);
    for (const f of spec.fields) {
      expect(Number(got.get(`${name}.${f.name}@`)), `offsetof ${name}.${f.name}`).toBe(f.offset);
      expect(Number(got.get(`${name}.${f.name}#`)), `sizeof ${name}.${f.name}`).toBe(f.unionSize ?? fieldBytes(f));
    }
    if (spec.flex) expect(Number(got.get(`${name}.${spec.flex.name}@`))).toBe(spec.flex.offset);
  });

  it("the kvm_run exit union starts at KVM_RUN_EXIT_UNION_OFFSET", () => {
    expect(Number(got.get("exit_union@"))).toBe(KVM_RUN_EXIT_UNION_OFFSET);
  });
});
