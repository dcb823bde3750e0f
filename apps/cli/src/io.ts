/** Where a command writes. Tests pass a capturing Io; the binary passes the process streams. */
export interface Io {
  out(text: string): void;
  /** Writes raw bytes to standard output (binary formats such as `xsave encode --output bin`). */
  outBytes(data: Uint8Array): void;
  err(text: string): void;
  /** Reads a whole input file, "-" meaning standard input. */
  readInput(path: string): Promise<Buffer>;
  /** True when stderr is a terminal (progress spinners only then). */
  readonly stderrIsTty: boolean;
  /** True when stdout is a terminal: colour in stdout only then (see `stdoutColour`). */
  readonly stdoutIsTty: boolean;
  readonly cwd: string;
}

export const processIo: Io = {
  out: (text) => void process.stdout.write(text),
  outBytes: (data) => void process.stdout.write(data),
  err: (text) => void process.stderr.write(text),
  readInput: async (path) => {
    const { readFile } = await import("node:fs/promises");
    if (path !== "-") return readFile(path);
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  },
  stderrIsTty: Boolean(process.stderr.isTTY),
  stdoutIsTty: Boolean(process.stdout.isTTY),
  cwd: process.cwd(),
};

/**
 * Whether to colour what goes to stdout: only when stdout is a terminal, and not when NO_COLOR is
 * set (no-color.org) or FORCE_COLOR=0. CI, FORCE_COLOR=1 and a terminal on stderr never put escape
 * sequences into redirected output.
 */
export function stdoutColour(io: Io, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!io.stdoutIsTty) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  return env.FORCE_COLOR !== "0";
}

/** JSON with u64 bigints as "0x…" strings, two-space indented, newline-terminated. */
export function toJson(value: unknown): string {
  return (
    JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v), 2) + "\n"
  );
}
