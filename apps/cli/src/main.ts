import { Command, CommanderError } from "commander";
import { KvmxError } from "@kvmx/core";
import { commands } from "./commands/index.js";
import { CommandExit, ExitCode } from "./exit-codes.js";
import { processIo, type Io } from "./io.js";

export { ExitCode } from "./exit-codes.js";
export type { Io } from "./io.js";

function buildProgram(io: Io): Command {
  const program = new Command("kvmx")
    .description("Model, check and probe how KVM switches a vCPU's registers, Intel APX R16–R31 included.")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError("(run with --help for usage)");
  for (const register of commands) register(program, io);
  // Every (sub)command inherits the override so usage errors surface as CommanderError.
  const override = (cmd: Command) => {
    cmd.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
    cmd.commands.forEach(override);
  };
  program.commands.forEach(override);
  return program;
}

/** Runs the CLI; returns the process exit code instead of exiting, so tests can call it. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: "user" });
    return ExitCode.ok;
  } catch (err) {
    return errorToExitCode(err, io);
  }
}

function errorToExitCode(err: unknown, io: Io): number {
  if (err instanceof CommandExit) return err.code;
  if (err instanceof CommanderError) {
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") {
      return ExitCode.ok;
    }
    return ExitCode.usage;
  }
  if (err instanceof KvmxError) {
    io.err(`kvmx: ${err.message}\n`);
    switch (err.category) {
      case "bad-input":
        return ExitCode.badInput;
      case "unavailable":
        return ExitCode.unavailable;
      case "usage":
        return ExitCode.usage;
      default:
        return ExitCode.internal;
    }
  }
  io.err(`kvmx: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.internal;
}

