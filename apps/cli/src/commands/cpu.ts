import {
  CPU_PROFILE_NAMES,
  InputError,
  cpuidDumpFromJson,
  isCpuProfileName,
  profileFromCpuid,
  type CpuProfile,
  INSTRUCTION_EXAMPLES,
  INSTRUCTION_OPS,
  INSTRUCTIONS,
  bytesToHex,
  cpuProfile,
  encode,
  formatInstruction,
  u64Hex,
} from "@kvmx/core";
import type { Command } from "commander";
import { choicesHint, PROFILE_CHOICES, unknownChoice } from "../choices.js";
import { readInputText } from "../files.js";
import { toJson, type Io } from "../io.js";
import { renderTable } from "../table.js";

/**
 * `--profile` values: a built-in profile name, or a JSON file with a CPUID dump (`kvmx probe --json`
 * output or an array of kvm_cpuid_entry2-shaped entries), e.g. a real KVM_GET_SUPPORTED_CPUID.
 * An unknown name (not shaped like a path) is a usage error; `--profile help` lists the built-ins.
 */
export async function loadProfile(io: Io, spec: string): Promise<CpuProfile> {
  if (isCpuProfileName(spec)) return cpuProfile(spec);
  if (!/[./\\]/.test(spec)) throw unknownChoice(PROFILE_CHOICES, spec);
  const text = await readInputText(io, spec, "CPUID dump");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`not JSON (${(e as Error).message.replace(/\s+/g, " ")})`, { file: spec }, { cause: e });
  }
  return profileFromCpuid(cpuidDumpFromJson(json, spec), { name: spec });
}

/** The `--profile` option's help text. */
export const PROFILE_HELP = `CPU profile: ${choicesHint(PROFILE_CHOICES)}, or a CPUID dump JSON file (\`kvmx probe --json\` output)`;

/** `kvmx cpu profiles|instructions`: the built-in CPU profiles and the instruction table. */
export function register(program: Command, io: Io): void {
  const cpu = program.command("cpu").description("CPU profiles and the instruction subset the model executes");

  cpu
    .command("profiles")
    .description("list the built-in CPU profiles (vendor, APX, supported XCR0, XSAVE sizes)")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }) => {
      const profiles = CPU_PROFILE_NAMES.map((n) => cpuProfile(n));
      if (opts.json) {
        io.out(
          toJson({
            schemaVersion: 1,
            profiles: profiles.map((p) => ({
              name: p.name,
              description: p.description,
              vendor: p.vendor,
              hasApx: p.hasApx,
              supportedXcr0: p.supportedXcr0,
              supportedXss: p.supportedXss,
              maxStandardSize: p.maxStandardSize,
              components: p.components.map((c) => ({
                index: c.index, name: c.name, size: c.size, standardOffset: c.standardOffset ?? null, align64: c.align64, supervisor: c.supervisor,
              })),
            })),
          }),
        );
        return;
      }
      const rows = profiles.map((p) => [p.name, p.vendor, p.hasApx ? "yes" : "no", u64Hex(p.supportedXcr0), String(p.maxStandardSize), p.description]);
      io.out(renderTable({ head: ["profile", "vendor", "APX", "XCR0", "XSAVE size", "description"], rows, rowRules: true }) + "\n");
    });

  cpu
    .command("instructions")
    .description("the instruction table: mnemonic, operands, privilege, encoding source, an example encoding")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }) => {
      const rows = INSTRUCTION_OPS.map((op) => {
        const s = INSTRUCTIONS[op];
        const ex = INSTRUCTION_EXAMPLES[op][0]!;
        return {
          op, mnemonic: s.mnemonic, operands: s.operands, longModeOnly: s.longModeOnly, cpl0: s.cpl0,
          status: s.status, source: s.source, example: formatInstruction(ex.insn), bytes: bytesToHex(encode(ex.insn)),
        };
      });
      if (opts.json) {
        io.out(toJson({ schemaVersion: 1, instructions: rows }));
        return;
      }
      const body = rows.map((r) => [r.op, r.operands, r.longModeOnly ? "yes" : "", r.cpl0 ? "yes" : "", r.example, r.bytes]);
      io.out(renderTable({ head: ["op", "operands", "64-bit only", "CPL0", "example", "bytes"], rows: body }) + "\n");
    });
}
