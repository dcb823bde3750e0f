/**
 * Typed errors of kvmx. Library code throws only these; the CLI maps their category to an exit code
 * (usage 2, bad input 65, unavailable 69, internal 70, cannot create output 73).
 */
export type ErrorCategory = "bad-input" | "unavailable" | "usage" | "internal" | "cannot-create";

/** Where in an input a problem sits; line and column are 1-based. */
export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
}

export function formatLocation(loc: SourceLocation): string {
  if (loc.line === undefined) return loc.file;
  return loc.column === undefined ? `${loc.file}:${loc.line}` : `${loc.file}:${loc.line}:${loc.column}`;
}

export class KvmxError extends Error {
  constructor(
    message: string,
    readonly category: ErrorCategory,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Malformed or invalid user input: a file, a hex string, an image, a profile name. */
export class InputError extends KvmxError {
  constructor(
    message: string,
    readonly location?: SourceLocation,
    options?: { cause?: unknown },
  ) {
    super(location ? `${formatLocation(location)}: ${message}` : message, "bad-input", options);
  }
}

/** An output file or directory that cannot be created or written (sysexits' EX_CANTCREAT). */
export class OutputError extends KvmxError {
  constructor(
    message: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, "cannot-create", options);
  }
}

/** A scenario or design file that does not parse or validate; always carries file, line and column. */
export class ScenarioError extends InputError {
  constructor(message: string, location: SourceLocation, options?: { cause?: unknown }) {
    super(message, location, options);
  }
}

/** A model invariant the code itself relies on was broken: a bug in kvmx, never in the input. */
export class ModelBugError extends KvmxError {
  constructor(message: string) {
    super(message, "internal");
  }
}
