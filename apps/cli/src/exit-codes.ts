/** The CLI's exit codes (sysexits.h where one exists). */
export const ExitCode = {
  ok: 0,
  /** a check found a violation, a diff found a difference, an expectation failed */
  checkFailed: 1,
  usage: 2,
  /** EX_DATAERR: bad input file, hex, image, profile or design */
  badInput: 65,
  /** EX_UNAVAILABLE: /dev/kvm is missing or unusable */
  unavailable: 69,
  /** EX_SOFTWARE: a bug in kvmx */
  internal: 70,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Thrown by a command action to end with a non-zero code after printing its own output (a check that failed, a diff). */
export class CommandExit extends Error {
  constructor(readonly code: ExitCode) {
    super(`exit ${code}`);
  }
}
