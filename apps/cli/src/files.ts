/**
 * File errors as one line naming the file and the reason: unreadable inputs are bad input (exit 65),
 * unwritable outputs are "cannot create" (exit 73). Commands check their output paths before any long
 * work starts (`checkOutputFile`, `checkOutputDir`), so a typo in `--html` does not cost a whole run.
 */
import { constants } from "node:fs";
import { access, mkdir, stat, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { InputError, OutputError } from "@kvmx/core";
import type { Io } from "./io.js";

/** What an errno means, in words (the code follows in parentheses). */
const ERRNO_WORDS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EISDIR: "is a directory",
  ENOTDIR: "a component of the path is not a directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
  EEXIST: "already exists",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "name too long",
  EMFILE: "too many open files",
};

/** "no such file or directory (ENOENT)" for a Node file-system error; the message for anything else. */
export function errnoReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string") return ERRNO_WORDS[code] ? `${ERRNO_WORDS[code]} (${code})` : code;
  return err instanceof Error ? err.message : String(err);
}

const isFsError = (err: unknown): boolean => typeof (err as NodeJS.ErrnoException | undefined)?.code === "string";

/**
 * Reads FILE ("-": standard input) through `io`. A file that cannot be read is an InputError
 * "FILE: cannot read WHAT: REASON" (exit 65), never a stack trace.
 */
export async function readInputFile(io: Io, file: string, what = "file"): Promise<Buffer> {
  try {
    return await io.readInput(file === "-" ? "-" : resolve(io.cwd, file));
  } catch (err) {
    if (!isFsError(err)) throw err;
    throw new InputError(`cannot read ${what}: ${errnoReason(err)}`, { file }, { cause: err });
  }
}

/** readInputFile as UTF-8 text. */
export async function readInputText(io: Io, file: string, what = "file"): Promise<string> {
  return (await readInputFile(io, file, what)).toString("utf8");
}

/** Checks, before any work, that an input FILE can be read (InputError, exit 65, otherwise). */
export async function checkInputFile(io: Io, file: string, flag: string): Promise<void> {
  if (file === "-") return;
  const abs = resolve(io.cwd, file);
  try {
    const st = await stat(abs);
    if (st.isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
    await access(abs, constants.R_OK);
  } catch (err) {
    throw new InputError(`cannot read ${flag} file: ${errnoReason(err)}`, { file }, { cause: err });
  }
}

/**
 * Checks, before any work, that FILE can be written: not a directory, its directory exists and is
 * writable, and the file itself (if it exists) is writable. OutputError (exit 73) otherwise.
 */
export async function checkOutputFile(io: Io, file: string, flag: string): Promise<void> {
  const abs = resolve(io.cwd, file);
  const existing = await stat(abs).catch(() => undefined);
  if (existing?.isDirectory()) throw new OutputError(`cannot write ${flag} file: is a directory`, file);
  try {
    if (existing) await access(abs, constants.W_OK);
    else {
      const dir = await stat(dirname(abs));
      if (!dir.isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
      await access(dirname(abs), constants.W_OK);
    }
  } catch (err) {
    throw new OutputError(`cannot write ${flag} file: ${errnoReason(err)}`, file, { cause: err });
  }
}

/**
 * Checks, before any work, that DIR is (or can be made) a writable directory, creating it. An existing
 * file in its place, or a parent that cannot hold it, is an OutputError (exit 73).
 */
export async function checkOutputDir(io: Io, dir: string, flag: string): Promise<void> {
  const abs = resolve(io.cwd, dir);
  const existing = await stat(abs).catch(() => undefined);
  if (existing && !existing.isDirectory()) throw new OutputError(`cannot use as the ${flag} directory: it exists and is not a directory`, dir);
  try {
    if (!existing) await mkdir(abs, { recursive: true });
    await access(abs, constants.W_OK);
  } catch (err) {
    throw new OutputError(`cannot create the ${flag} directory: ${errnoReason(err)}`, dir, { cause: err });
  }
}

/** Writes FILE (relative to io.cwd); a failure is an OutputError (exit 73) naming the file. */
export async function writeOutputFile(io: Io, file: string, data: string | Uint8Array, what = "output"): Promise<void> {
  try {
    await writeFile(resolve(io.cwd, file), data);
  } catch (err) {
    if (!isFsError(err)) throw err;
    throw new OutputError(`cannot write ${what}: ${errnoReason(err)}`, file, { cause: err });
  }
}
