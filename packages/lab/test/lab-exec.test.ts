import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LabError } from "../src/errors.js";
import { LAB_ENV, labExec, labUnavailableReason, type LabExecOptions } from "../src/lab-exec.js";

/**
 * Boots the real lab (QEMU + the cached kernel): a command runs in this folder with /dev/kvm, its
 * output and exit status come back, results come back through the output share and nowhere else,
 * boots run side by side, and timeouts say which phase ran out. Skips, saying why, where the lab is
 * not set up (`kvmx lab setup`).
 */
const reason = labUnavailableReason();
if (reason) console.warn(`lab boot tests skipped: ${reason}`);

const out = mkdtempSync(join(tmpdir(), "kvmx-lab-out-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

async function run(argv: string[], extra: Partial<LabExecOptions> = {}) {
  let stdout = "";
  let stderr = "";
  const r = await labExec({ argv, cwd: process.cwd(), allowFetch: false, stdout: (b) => (stdout += b), stderr: (b) => (stderr += b), ...extra });
  return { ...r, stdout, stderr };
}

describe.skipIf(reason !== undefined)("kvmx lab (boots QEMU)", () => {
  it("runs the command here with /dev/kvm; stdout, stderr, status and the output share come back; the host root stays untouched", async () => {
    const marker = join(process.cwd(), `.kvmx-lab-test-${process.pid}`);
    const script = [
      "pwd",
      "test -c /dev/kvm && echo kvm-present",
      `echo "$${LAB_ENV.qemuCpu}" >&2`,
      `echo result > ${out}/result.txt`,
      `echo scratch > ${marker}`,
      "exit 42",
    ].join("; ");
    const r = await run(["sh", "-c", script], { outDir: out });
    expect(r.exitCode).toBe(42);
    expect(r.kvm).toBe(true);
    expect(r.stdout).toBe(`${process.cwd()}\nkvm-present\n`);
    expect(r.stderr).toBe("max\n");
    expect(readFileSync(join(out, "result.txt"), "utf8")).toBe("result\n");
    expect(existsSync(marker)).toBe(false);
    expect(r.bootMs).toBeGreaterThan(0);
    expect(r.cpuModel).not.toBe("");
  }, 300_000);

  it("two boots at once do not clash", async () => {
    const [a, b] = await Promise.all([run(["sh", "-c", "echo a; exit 3"]), run(["sh", "-c", "echo b; exit 4"])]);
    expect([a.stdout, a.exitCode, b.stdout, b.exitCode]).toEqual(["a\n", 3, "b\n", 4]);
  }, 300_000);

  it("a command past --timeout is stopped with a message naming the timeout", async () => {
    const err = await run(["sleep", "600"], { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabError);
    expect((err as LabError).message).toMatch(/^the command did not finish within 1\.0 s in the lab \(stopped\); raise --timeout$/);
  }, 300_000);

  it("a boot past --boot-timeout is stopped with the console's last lines", async () => {
    const err = await run(["true"], { bootTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabError);
    expect((err as LabError).message).toMatch(/^the lab did not boot within 0\.3 s/);
    expect((err as LabError).category).toBe("unavailable");
  }, 300_000);
});
