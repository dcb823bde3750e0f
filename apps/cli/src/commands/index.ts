import type { Command } from "commander";
import type { Io } from "../io.js";
import { register as registerProbe } from "./probe.js";
import { register as registerUapi } from "./uapi.js";
import { register as registerCpu } from "./cpu.js";
import { register as registerXsave } from "./xsave.js";
import { register as registerXcr0 } from "./xcr0.js";
import { register as registerRun } from "./run.js";
import { register as registerDesigns } from "./designs.js";
import { register as registerCheck } from "./check.js";
import { register as registerCost } from "./cost.js";
import { register as registerDiff } from "./diff.js";
import { register as registerLab } from "./lab.js";
import { register as registerCorpus } from "./corpus.js";
import { register as registerAssumptions } from "./assumptions.js";

/**
 * Each command module exports `register(program, io)`. A command's action returns its exit code
 * (or throws a typed KvmxError, which main() maps to an exit code).
 */
export type RegisterCommand = (program: Command, io: Io) => void;

export const commands: RegisterCommand[] = [
  registerProbe,
  registerUapi,
  registerCpu,
  registerXsave,
  registerXcr0,
  registerRun,
  registerDesigns,
  registerCheck,
  registerCorpus,
  registerAssumptions,
  registerCost,
  registerDiff,
  registerLab,
];
