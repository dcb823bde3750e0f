import { relative } from "node:path";
import type { Io } from "../src/io.js";

/** An Io that records what a command prints; inputs come from a map (or the file system). */
export function captureIo(inputs: Record<string, Buffer | string> = {}) {
  let out = "";
  let err = "";
  const bytes: Uint8Array[] = [];
  const io: Io & { stdout(): string; stderr(): string; stdoutBytes(): Buffer } = {
    out: (t) => void (out += t),
    outBytes: (d) => void bytes.push(Uint8Array.from(d)),
    err: (t) => void (err += t),
    readInput: async (path) => {
      // Keys may be absolute or relative to the working directory, as the test finds natural.
      const v = inputs[path] ?? inputs[relative(process.cwd(), path)];
      if (v !== undefined) return Buffer.isBuffer(v) ? v : Buffer.from(v);
      const { readFile } = await import("node:fs/promises");
      return readFile(path);
    },
    stderrIsTty: false,
    stdoutIsTty: false,
    cwd: process.cwd(),
    stdout: () => out,
    stdoutBytes: () => Buffer.concat(bytes),
    stderr: () => err,
  };
  return io;
}
