/**
 * `kvmx designs [FILE...] [--json]`: the built-in EGPR switch designs with descriptions and sources;
 * design files given as arguments are validated (errors at file:line:column, exit 65) and listed too.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { BUILTIN_DESIGNS, parseDesignFile, type Design } from "@kvmx/core";
import { readInputText } from "../files.js";
import { toJson, type Io } from "../io.js";

export function register(program: Command, io: Io): void {
  program
    .command("designs")
    .description("List the EGPR switch designs (built-in, and any design files given), with descriptions and sources")
    .argument("[files...]", "design files (YAML/JSON) to validate and list")
    .option("--json", "machine-readable output (schemaVersion 1)")
    .action(async (files: string[], opts: { json?: boolean }) => {
      const extra: Design[] = [];
      for (const f of files) {
        const path = resolve(io.cwd, f);
        extra.push(parseDesignFile(await readInputText(io, f, "design file"), path));
      }
      const designs = [...BUILTIN_DESIGNS, ...extra];
      if (opts.json) {
        io.out(toJson({ schemaVersion: 1, designs: designs.map((d) => ({ ...d, builtin: BUILTIN_DESIGNS.includes(d) })) }));
        return;
      }
      const out: string[] = [];
      for (const d of designs) {
        out.push(`${d.name}${BUILTIN_DESIGNS.includes(d) ? "" : " (file)"} — EGPRs in ${d.egprHome}${d.hardwareXcr0Switch ? ", hardware XCR0 switch" : ""}`);
        out.push(`  ${d.description}`);
        out.push(`  source: ${d.source}`);
        for (const a of d.actions) {
          const extras = [a.xcr0 ? `xcr0=${a.xcr0}` : "", a.via ? `via=${a.via}` : "", a.when ? `when ${a.when}` : ""].filter(Boolean).join(" ");
          out.push(`    @${a.anchor}: ${a.op}${extras ? ` ${extras}` : ""}`);
        }
        out.push("");
      }
      io.out(out.join("\n"));
    });
}
