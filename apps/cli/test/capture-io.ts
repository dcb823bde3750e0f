import type { Io } from "../src/io.js";

/** An Io that records what a command prints; inputs come from a map (or the file system). */
export function captureIo(inputs: Record<string, Buffer | string> = {}) {
  let out = "";
  let err = "";
  const io: Io & { stdout(): string; stderr(): string } = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    readInput: async (path) => {
      const v = inputs[path];
      if (v !== undefined) return Buffer.isBuffer(v) ? v : Buffer.from(v);
      const { readFile } = await import("node:fs/promises");
      return readFile(path);
    },
    stderrIsTty: false,
    cwd: process.cwd(),
    stdout: () => out,
    stderr: () => err,
  };
  return io;
}
