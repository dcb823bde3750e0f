/** Where a command writes. Tests pass a capturing Io; the binary passes the process streams. */
export interface Io {
  out(text: string): void;
  /** Writes raw bytes to standard output (binary formats such as `xsave encode --output bin`). */
  outBytes(data: Uint8Array): void;
  err(text: string): void;
  /** Reads a whole input file, "-" meaning standard input. */
  readInput(path: string): Promise<Buffer>;
  /** True when stderr is a terminal (progress bars and colour only then). */
  readonly stderrIsTty: boolean;
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
  cwd: process.cwd(),
};

/** JSON with u64 bigints as "0x…" strings (STYLE.md), two-space indented, newline-terminated. */
export function toJson(value: unknown): string {
  return (
    JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v), 2) + "\n"
  );
}
