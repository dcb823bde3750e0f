import { Command, CommanderError } from "commander";
import { KvmxError } from "@kvmx/core";
import { BACKEND_CHOICES, choiceListingRequest, requireChoices, requireDesignNamesOrFiles } from "./choices.js";
import { commands } from "./commands/index.js";
import { checkInputFile, checkOutputDir, checkOutputFile } from "./files.js";
import { CommandExit, EXIT_CODES_HELP, ExitCode } from "./exit-codes.js";
import { processIo, type Io } from "./io.js";

export { ExitCode } from "./exit-codes.js";
export type { Io } from "./io.js";

/**
 * What every command's help shares: required options marked as such, and the exit codes at the end.
 * Applied to the whole tree after registration, so each command module stays a plain description.
 */
function finishHelp(cmd: Command, io: Io): void {
  cmd.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  for (const o of cmd.options) {
    if (o.mandatory && !o.description.endsWith("(required)")) o.description = `${o.description} (required)`;
  }
  cmd.addHelpText("after", `\n${EXIT_CODES_HELP}\n`);
  cmd.commands.forEach((c) => finishHelp(c, io));
}

function buildProgram(io: Io): Command {
  const program = new Command("kvmx")
    .description("Model, check and probe how KVM switches a vCPU's registers, Intel APX R16–R31 included.")
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)");
  for (const register of commands) register(program, io);
  finishHelp(program, io);
  // One answer to an unknown --backend or --design name in every command that takes them: the
  // usage error naming the known ones (exit 2), before the command starts any work.
  program.hook("preAction", async (_program, action) => {
    const opts = action.opts() as { backend?: unknown; design?: unknown };
    if (Array.isArray(opts.backend)) requireChoices(BACKEND_CHOICES, opts.backend as string[]);
    if (Array.isArray(opts.design)) requireDesignNamesOrFiles(opts.design as string[]);
    await checkFileOptions(io, action.opts());
  });
  return program;
}

/**
 * The file options that mean the same in every command, checked before the command runs: an output
 * that cannot be written is exit 73, an input that cannot be read exit 65 — not a failure after the
 * work (a whole `kvmx check`) is done.
 */
const OUTPUT_FILE_OPTIONS = { html: "--html", outFile: "--out-file", record: "--record" } as const;
const OUTPUT_DIR_OPTIONS = { traceOut: "--trace-out" } as const;
const INPUT_FILE_OPTIONS = { merge: "--merge", weights: "--weights", replay: "--replay" } as const;

async function checkFileOptions(io: Io, opts: Record<string, unknown>): Promise<void> {
  const each = (v: unknown): string[] => (typeof v === "string" ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  for (const [key, flag] of Object.entries(INPUT_FILE_OPTIONS)) for (const f of each(opts[key])) await checkInputFile(io, f, flag);
  for (const [key, flag] of Object.entries(OUTPUT_FILE_OPTIONS)) for (const f of each(opts[key])) await checkOutputFile(io, f, flag);
  for (const [key, flag] of Object.entries(OUTPUT_DIR_OPTIONS)) for (const f of each(opts[key])) await checkOutputDir(io, f, flag);
}

/** Runs the CLI; returns the process exit code instead of exiting, so tests can call it. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  if (argv.length === 0) {
    // Bare `kvmx`: the help, on stderr, as the usage error it is.
    program.outputHelp({ error: true });
    return ExitCode.usage;
  }
  const listing = choiceListingRequest(program, argv);
  if (listing !== undefined) {
    io.out(listing);
    return ExitCode.ok;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return ExitCode.ok;
  } catch (err) {
    return errorToExitCode(err, io);
  }
}

const CATEGORY_EXIT: Record<KvmxError["category"], ExitCode> = {
  "bad-input": ExitCode.badInput,
  unavailable: ExitCode.unavailable,
  usage: ExitCode.usage,
  internal: ExitCode.internal,
  "cannot-create": ExitCode.cannotCreate,
};

function errorToExitCode(err: unknown, io: Io): number {
  if (err instanceof CommandExit) return err.code;
  if (err instanceof CommanderError) {
    // --help and --version end with 0; help shown because a command was missing (bare `kvmx`,
    // `kvmx xsave`) is a usage error, as is every other commander error.
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return ExitCode.ok;
    if (err.code === "commander.help") return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    return ExitCode.usage;
  }
  if (err instanceof KvmxError) {
    io.err(`kvmx: ${err.message}\n`);
    return CATEGORY_EXIT[err.category] ?? ExitCode.internal;
  }
  io.err(`kvmx: internal error (please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.internal;
}
