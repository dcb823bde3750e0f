/**
 * The named choices of the CLI's options — designs, backends, CPU profiles, model assumptions, event
 * kinds — in one place: the text `--help` shows, the QEMU-style listing `--design help` prints, and
 * the one error an unknown name gets (a usage error, exit 2, the same for every option).
 */
import { ASSUMPTIONS, BUILTIN_DESIGNS, CPU_PROFILE_NAMES, CPU_PROFILES, EVENT_KINDS, KvmxError } from "@kvmx/core";
import { BACKENDS, DEFAULT_CHECK_BACKENDS } from "./backends.js";
import type { Command } from "commander";

export interface Choice {
  readonly name: string;
  readonly description: string;
}

/** A named list of choices for one option (`--design`, `--backend`, …). */
export interface ChoiceList {
  /** What one choice is, singular ("design"). */
  readonly what: string;
  readonly flag: string;
  readonly choices: readonly Choice[];
}

export const DESIGN_CHOICES: ChoiceList = {
  what: "design",
  flag: "--design",
  choices: BUILTIN_DESIGNS.map((d) => ({ name: d.name, description: d.description })),
};

export const BACKEND_CHOICES: ChoiceList = {
  what: "backend",
  flag: "--backend",
  choices: BACKENDS.map((b) => ({
    name: b.name,
    description: DEFAULT_CHECK_BACKENDS.includes(b.name) ? b.description : `${b.description} (not in the default matrix)`,
  })),
};

export const PROFILE_CHOICES: ChoiceList = {
  what: "CPU profile",
  flag: "--profile",
  choices: CPU_PROFILE_NAMES.map((n) => ({ name: n, description: CPU_PROFILES[n].description })),
};

export const ASSUMPTION_CHOICES: ChoiceList = {
  what: "assumption",
  flag: "--option",
  choices: Object.values(ASSUMPTIONS).map((a) => ({
    name: a.name,
    description: `${a.alternatives.join(" | ")} (default ${a.default}): ${a.fact}`,
  })),
};

export const EVENT_KIND_CHOICES: ChoiceList = {
  what: "event kind",
  flag: "--exclude",
  choices: EVENT_KINDS.map((k) => ({ name: k, description: "" })),
};

export const names = (list: ChoiceList): string[] => list.choices.map((c) => c.name);

/** `help` (and QEMU's `?`) as an option value asks for the listing instead of a run. */
export function isHelpValue(value: string | readonly string[] | undefined): boolean {
  const v = Array.isArray(value) ? value : value === undefined ? [] : [value as string];
  return v.some((x) => x === "help" || x === "?");
}

/** Words of `text` in lines of at most `width` columns (a longer word gets a line of its own). */
function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * The QEMU-style listing `--design help` prints: one choice a line, name then description, the
 * description wrapped under itself to stay within 100 columns.
 */
export function listChoices(list: ChoiceList, maxWidth = 100): string {
  const width = Math.max(...list.choices.map((c) => c.name.length));
  const indent = 2 + width + 2;
  const lines = list.choices.map((c) => {
    if (!c.description) return `  ${c.name}`;
    const [first = "", ...rest] = wrapWords(c.description, Math.max(20, maxWidth - indent));
    return [`  ${c.name.padEnd(width)}  ${first}`, ...rest.map((l) => `${" ".repeat(indent)}${l}`)].join("\n");
  });
  return `Available ${list.what}s (${list.flag}):\n${lines.join("\n")}\n`;
}

/** For an option's `--help` line: "one of a, b, c (`--x help` describes them)". */
export function choicesHint(list: ChoiceList): string {
  return `one of ${names(list).join(", ")} (\`${list.flag} help\` describes them)`;
}

/** The usage error (exit 2) for a name that is not one of the list's choices. */
export function unknownChoice(list: ChoiceList, value: string): KvmxError {
  return new KvmxError(`${list.flag}: unknown ${list.what} "${value}" (known: ${names(list).join(", ")}; \`${list.flag} help\` describes them)`, "usage");
}

/** Checks every value against the list; returns them unchanged. */
export function requireChoices(list: ChoiceList, values: readonly string[]): string[] {
  for (const v of values) if (!names(list).includes(v)) throw unknownChoice(list, v);
  return [...values];
}

/**
 * `--design` values may be built-in names or design files. A value that is neither a built-in name
 * nor shaped like a path (no `.`, `/` or `\`) is an unknown design: the same usage error as an unknown
 * backend. Path-shaped values are left for the caller to read (an unreadable file is exit 65).
 */
export function requireDesignNamesOrFiles(values: readonly string[]): void {
  for (const v of values) {
    if (names(DESIGN_CHOICES).includes(v) || /[./\\]/.test(v)) continue;
    throw unknownChoice(DESIGN_CHOICES, v);
  }
}

/** The options whose value `help` lists their choices, in whichever command declares them. */
const LISTED_OPTIONS: readonly ChoiceList[] = [DESIGN_CHOICES, BACKEND_CHOICES, PROFILE_CHOICES, ASSUMPTION_CHOICES, EVENT_KIND_CHOICES];

/**
 * QEMU's `-cpu help`: when argv asks `--design help` (or `?`, or `--design=help`) of a command that
 * has a `--design` option, the listing to print instead of running it; undefined otherwise. Found
 * before parsing, so the listing needs none of the command's other arguments.
 */
export function choiceListingRequest(program: Command, argv: readonly string[]): string | undefined {
  let cmd = program;
  for (const arg of argv) {
    if (arg.startsWith("-")) break;
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) break;
    cmd = sub;
  }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    const value = inline ?? argv[i + 1];
    const list = LISTED_OPTIONS.find((l) => l.flag === flag);
    if (!list || !isHelpValue(value) || !cmd.options.some((o) => o.long === flag)) continue;
    return listChoices(list);
  }
  return undefined;
}
