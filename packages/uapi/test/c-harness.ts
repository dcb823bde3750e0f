import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Why C-against-headers tests cannot run here, or undefined when gcc and <linux/kvm.h> exist. */
export function cHeaderUnavailableReason(): string | undefined {
  if (!existsSync("/usr/include/linux/kvm.h")) return "/usr/include/linux/kvm.h is absent";
  try {
    execFileSync("gcc", ["--version"], { stdio: "ignore" });
  } catch {
    return "gcc is not installed";
  }
  return undefined;
}

/** Compiles and runs a C program; returns its stdout. */
export function runC(source: string, extraFlags: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), "kvmx-uapi-c-"));
  try {
    const src = join(dir, "probe.c");
    const exe = join(dir, "probe");
    writeFileSync(src, source);
    execFileSync("gcc", ["-O0", "-w", "-o", exe, src, ...extraFlags], { stdio: ["ignore", "pipe", "pipe"] });
    return execFileSync(exe, { encoding: "utf8", maxBuffer: 64 << 20 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Parses "key value" lines into a map. */
export function parseLines(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp > 0) m.set(line.slice(0, sp), line.slice(sp + 1));
  }
  return m;
}
