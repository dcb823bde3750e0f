import { spawnSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { afterAll, describe, expect, it } from "vitest";
import { commandScript, CONSOLE_PREFIX, guestInitScript, MOUNT_TAG, shellQuote } from "../src/guest-init.js";

const dir = realpathSync(mkdtempSync(join(tmpdir(), "kvmx-lab-script-")));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a generated script with the host's /bin/sh, as the lab's chroot does. */
function sh(script: string): { status: number | null; stdout: string; stderr: string } {
  writeFileSync(join(dir, "run.sh"), script);
  const r = spawnSync("/bin/sh", [join(dir, "run.sh")], { encoding: "utf8", env: {} });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("the command script", () => {
  test.prop([fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !s.includes("\0"))], { numRuns: 200 })(
    "any argument reaches the command unchanged (quoting)",
    (arg) => {
      const r = sh(`printf '%s' ${shellQuote(arg)}`);
      expect(r.stdout).toBe(arg);
    },
  );

  it("runs in the caller's folder with the caller's environment and passes the exit status through", () => {
    const r = sh(commandScript(dir, ["/bin/sh", "-c", 'pwd; printf "%s|%s" "$GREETING" "$1"; exit 7', "sh", "it's"], { GREETING: "hello\nworld", PWD: "/elsewhere", "BAD-NAME": "x" }));
    expect(r.status).toBe(7);
    expect(r.stdout).toBe(`${dir}\nhello\nworld|it's`);
  });

  it("a missing command or folder exits 127, as a shell does", () => {
    expect(sh(commandScript(dir, ["/nonexistent/cmd"], {})).status).toBe(127);
    expect(sh(commandScript("/nonexistent/dir", ["true"], {})).status).toBe(127);
  });
});

describe("/init", () => {
  it("is a busybox script that mounts the three shares by tag, reports on the console and powers off", () => {
    const s = guestInitScript();
    expect(s.startsWith("#!/bin/busybox sh\n")).toBe(true);
    for (const tag of Object.values(MOUNT_TAG)) expect(s).toContain(` ${tag} `);
    expect(s).toMatch(/ro hostroot \/mnt\/host/);
    expect(s).toContain(`say() { echo "${CONSOLE_PREFIX}$*"; }`);
    expect(s.trimEnd().endsWith('stop "exit $code $(up)"')).toBe(true);
    // a POSIX shell parses it (syntax check only)
    expect(spawnSync("/bin/sh", ["-n", "-c", s]).status).toBe(0);
  });
});
