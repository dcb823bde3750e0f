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
import Table from "cli-table3";
import { toJson, type Io } from "../io.js";

/**
 * `--profile` values: a built-in profile name, or a JSON file with a CPUID dump (`kvmx probe --json`
 * output or an array of kvm_cpuid_entry2-shaped entries), e.g. a real KVM_GET_SUPPORTED_CPUID.
 */
export async function loadProfile(io: Io, spec: string): Promise<CpuProfile> {
  if (isCpuProfileName(spec) || !/[./]/.test(spec)) return cpuProfile(spec);
  let text: string;
  try {
    text = (await io.readInput(spec)).toString("utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`--profile ${spec}: not a built-in profile (${CPU_PROFILE_NAMES.join(", ")}) and not readable (${code ?? "error"})`, undefined, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${spec}: not JSON (${(e as Error).message})`, undefined, { cause: e });
  }
  return profileFromCpuid(cpuidDumpFromJson(json, spec), { name: spec });
}

const plainTable = (head: string[]) => new Table({ head, style: { head: [], border: [] } });

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
      const t = plainTable(["profile", "vendor", "APX", "XCR0", "XSAVE size", "description"]);
      for (const p of profiles) {
        t.push([p.name, p.vendor, p.hasApx ? "yes" : "no", u64Hex(p.supportedXcr0), String(p.maxStandardSize), p.description]);
      }
      io.out(t.toString() + "\n");
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
      const t = plainTable(["op", "operands", "64-bit only", "CPL0", "example", "bytes"]);
      for (const r of rows) t.push([r.op, r.operands, r.longModeOnly ? "yes" : "", r.cpl0 ? "yes" : "", r.example, r.bytes]);
      io.out(t.toString() + "\n");
    });
}
