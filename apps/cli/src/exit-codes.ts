/** The CLI's exit codes: one scheme for every command (sysexits.h where one exists). */
export const ExitCode = {
  ok: 0,
  /** a check found a violation, a diff found a difference, an expectation failed */
  checkFailed: 1,
  /** a bad command line: unknown command or option, a missing argument, a value outside an option's choices */
  usage: 2,
  /** no violation found, but some cell's search was bounded (depth or --max-states): the verdict is incomplete */
  incomplete: 3,
  /** EX_DATAERR: an input file that cannot be read or parsed, a bad hex value, image or CPUID dump */
  badInput: 65,
  /** EX_UNAVAILABLE: /dev/kvm is missing or unusable, QEMU is missing */
  unavailable: 69,
  /** EX_SOFTWARE: a bug in kvmx */
  internal: 70,
  /** EX_CANTCREAT: an output file or directory cannot be created or written */
  cannotCreate: 73,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit-code table every `--help` ends with (and the README repeats). */
export const EXIT_CODES_HELP = `Exit codes:
  0   ok
  1   check failed: a violation, a difference, a failed expectation or XCR0 rule
  2   usage: unknown command or option, missing argument, value not among the choices
  3   incomplete: no violation found, but the search was bounded
  65  bad input: a file that cannot be read or parsed, a bad value, image or dump
  69  unavailable: no usable /dev/kvm (or QEMU)
  70  internal error in kvmx (please report it)
  73  cannot create output: an output file or directory cannot be written`;

/** Thrown by a command action to end with a non-zero code after printing its own output (a check that failed, a diff). */
export class CommandExit extends Error {
  constructor(readonly code: ExitCode) {
    super(`exit ${code}`);
  }
}
