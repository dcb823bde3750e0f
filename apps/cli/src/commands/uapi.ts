import { elementSize, KVM_IOCTL, KVM_IOCTL_SPECS, KVM_STRUCTS, type FieldSpec, type KvmIoctlName, type StructName, type StructSpec } from "@kvmx/uapi";
import type { Command } from "commander";
import { toJson, type Io } from "../io.js";
import { renderTable } from "../table.js";

const hex = (v: number) => `0x${v.toString(16)}`;

function typeText(f: FieldSpec): string {
  const base = typeof f.type === "object" ? `struct ${f.type.struct}` : f.type;
  return f.count === undefined ? base : `${base}[${f.count}]`;
}

function layoutJson() {
  const structs: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(KVM_STRUCTS) as [StructName, StructSpec][]) {
    structs[name] = {
      c: spec.c.member ? `${spec.c.type}.${spec.c.member}` : spec.c.type,
      size: spec.size,
      fields: spec.fields.map((f) => ({
        name: f.name,
        offset: f.offset,
        size: f.unionSize ?? elementSize(f.type) * (f.count ?? 1),
        type: typeText(f),
      })),
      ...(spec.flex ? { flexibleArray: { name: spec.flex.name, offset: spec.flex.offset, elementSize: elementSize(spec.flex.type) } } : {}),
    };
  }
  return { schemaVersion: 1, structs };
}

/** `kvmx uapi layout|ioctls`: the struct and ioctl tables of @kvmx/uapi, as tested against <linux/kvm.h>. */
export function register(program: Command, io: Io): void {
  const uapi = program.command("uapi").description("kvm.h struct layouts and ioctl numbers as kvmx encodes them");

  uapi
    .command("layout")
    .description("struct sizes and field offsets")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }) => {
      if (opts.json) {
        io.out(toJson(layoutJson()));
        return;
      }
      const out: string[] = [];
      for (const [name, spec] of Object.entries(KVM_STRUCTS) as [StructName, StructSpec][]) {
        const c = spec.c.member ? `${spec.c.type}.${spec.c.member}` : spec.c.type;
        out.push(`${name} (${c}), ${spec.size} bytes`);
        const rows = spec.fields.map((f) => [String(f.offset), String(f.unionSize ?? elementSize(f.type) * (f.count ?? 1)), f.name, typeText(f)]);
        if (spec.flex) rows.push([String(spec.flex.offset), "…", `${spec.flex.name}[]`, typeof spec.flex.type === "object" ? `struct ${spec.flex.type.struct}` : spec.flex.type]);
        out.push(renderTable({ head: ["offset", "size", "field", "type"], rows }), "");
      }
      io.out(out.join("\n"));
    });

  uapi
    .command("ioctls")
    .description("ioctl name → request number")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }) => {
      const names = Object.keys(KVM_IOCTL) as KvmIoctlName[];
      if (opts.json) {
        io.out(toJson({ schemaVersion: 1, ioctls: Object.fromEntries(names.map((n) => [n, hex(KVM_IOCTL[n])])) }));
        return;
      }
      const rows = names.map((n) => {
        const s = KVM_IOCTL_SPECS[n];
        return [n, hex(KVM_IOCTL[n]), s.dir, "struct" in s ? s.struct : "", s.fd.join(",")];
      });
      io.out(renderTable({ head: ["ioctl", "number", "dir", "struct", "fd"], rows }) + "\n");
    });
}
