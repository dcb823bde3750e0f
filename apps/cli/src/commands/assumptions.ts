/**
 * `kvmx assumptions [--json]`: the model's named assumptions — the facts the sources leave open — with
 * each alternative, the source that supports it, the default, and whether `kvmx check` sweeps it.
 */
import type { Command } from "commander";
import { ASSUMPTION_NAMES, ASSUMPTIONS, AssumptionSpace } from "@kvmx/core";
import pc from "picocolors";
import { stdoutColour, toJson, type Io } from "../io.js";

export function register(program: Command, io: Io): void {
  program
    .command("assumptions")
    .description(
      "List the model's assumptions (facts the sources leave open): alternatives with their sources, the default, " +
        "and whether `kvmx check` sweeps it (run-scope assumptions with more than one alternative; pin one with --option name=value)",
    )
    .option("--json", "machine-readable output (schemaVersion 1)")
    .action((opts: { json?: boolean }) => {
      const swept = new Set(new AssumptionSpace({}, "each").swept);
      const rows = ASSUMPTION_NAMES.map((n) => {
        const a = ASSUMPTIONS[n];
        return {
          name: a.name,
          fact: a.fact,
          tag: a.tag === "[?]" ? "uncertain" : "secondary",
          alternatives: a.alternatives.map((alt) => ({ value: alt, default: alt === a.default, source: (a.sources as Record<string, string>)[alt]! })),
          default: a.default,
          scope: a.scope,
          swept: swept.has(n),
          doc: a.doc,
        };
      });
      if (opts.json) {
        io.out(toJson({ schemaVersion: 1, assumptions: rows }));
        return;
      }
      const c = stdoutColour(io) ? pc : pc.createColors(false);
      const out: string[] = [];
      for (const r of rows) {
        const how = r.swept ? "swept by kvmx check" : r.scope === "config" ? "fixed per CPU profile (not swept)" : "one alternative (not swept)";
        out.push(`${c.bold(r.name)} — ${r.tag}, ${how}`);
        out.push(`  ${r.fact}`);
        for (const alt of r.alternatives) out.push(`  ${alt.default ? c.green(`* ${alt.value}`) : `  ${alt.value}`}: ${alt.source}`);
        out.push(`  more: ${r.doc}`, "");
      }
      out.push(c.dim("* the default. `kvmx check --sweep each` (the default) checks the defaults and every single deviation; --sweep all every combination; --option name=value pins one."));
      io.out(out.join("\n") + "\n");
    });
}
