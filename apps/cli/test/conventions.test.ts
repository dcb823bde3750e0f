import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BUILTIN_DESIGNS } from "@kvmx/core";
import { BACKEND_NAMES } from "../src/backends.js";
import { kvmOpenCauses } from "../src/commands/probe.js";
import { EXIT_CODES_HELP, ExitCode } from "../src/exit-codes.js";
import { checkOutputDir, checkOutputFile, writeOutputFile } from "../src/files.js";
import { stdoutColour } from "../src/io.js";
import { main } from "../src/main.js";
import { renderTable, visibleWidth } from "../src/table.js";
import { captureIo } from "./capture-io.js";

const run = async (args: string[], inputs: Record<string, string> = {}) => {
  const io = captureIo(inputs);
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr(), io };
};
const widest = (text: string) => Math.max(...text.split("\n").map(visibleWidth));

const scratch = mkdtempSync(join(tmpdir(), "kvmx-conventions-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("one exit-code scheme", () => {
  it("has the documented codes, 3 and 73 included", () => {
    expect(ExitCode).toEqual({ ok: 0, checkFailed: 1, usage: 2, incomplete: 3, badInput: 65, unavailable: 69, internal: 70, cannotCreate: 73 });
    for (const code of Object.values(ExitCode)) expect(EXIT_CODES_HELP).toMatch(new RegExp(`^  ${code} `, "m"));
  });
  it("bare kvmx prints the help on stderr and exits 2; --help exits 0", async () => {
    const bare = await run([]);
    expect([bare.code, bare.out]).toEqual([2, ""]);
    expect(bare.err).toContain("Usage: kvmx");
    const group = await run(["xsave"]);
    expect([group.code, group.err]).toEqual([2, expect.stringContaining("Usage: kvmx xsave")]);
    expect((await run(["--help"])).code).toBe(0);
  });
  it("every command's --help ends with the exit codes and marks required options", async () => {
    const commands = [["run"], ["probe"], ["cost"], ["designs"], ["xsave", "decode"], ["xsave", "layout"], ["xcr0", "check"], ["cpu", "profiles"], ["uapi", "layout"]];
    for (const c of commands) {
      const r = await run([...c, "--help"]);
      expect(r.code, c.join(" ")).toBe(0);
      expect(r.out.trimEnd().endsWith(EXIT_CODES_HELP), c.join(" ")).toBe(true);
    }
    expect((await run(["xsave", "layout", "--help"])).out).toMatch(/--profile <name\|file>[\s\S]*\(required\)/);
    expect((await run(["xcr0", "check", "--help"])).out).toMatch(/27 means 0x27/);
  });
  it("--help lists the choices: designs and backends of cost, profiles of xsave", async () => {
    const cost = (await run(["cost", "--help"])).out.replace(/\s+/g, " ");
    for (const d of BUILTIN_DESIGNS) expect(cost).toContain(d.name);
    for (const b of BACKEND_NAMES()) expect(cost).toContain(b);
    expect((await run(["xsave", "decode", "--help"])).out.replace(/\s+/g, " ")).toContain("spr, kvm-pvm, dmr, zen");
  });
});

describe("QEMU-style listings", () => {
  it("--design help / --backend help / --profile help list the choices and exit 0, needing no other argument", async () => {
    const d = await run(["cost", "--design", "help"]);
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/^Available designs \(--design\):\n  fpstate {2,}no regs\[\] copy/);
    const b = await run(["cost", "--backend=?"]);
    expect(b.out).toMatch(/^Available backends \(--backend\):\n/);
    expect(b.out.replace(/\s+/g, " ")).toMatch(/svm-apx .*\(not in the default matrix\)/);
    const p = await run(["xcr0", "check", "--profile", "help"]);
    expect([p.code, p.out]).toEqual([0, expect.stringMatching(/^Available CPU profiles \(--profile\):\n  spr {6,}Sapphire Rapids/)]);
    for (const listing of [d.out, b.out, p.out]) expect(widest(listing)).toBeLessThanOrEqual(100);
  });
  it("only for commands that have the option", async () => {
    const r = await run(["uapi", "layout", "--design", "help"]);
    expect(r.code).toBe(2);
  });
});

describe("unknown names agree: a usage error, exit 2, naming the known ones", () => {
  it("kvmx check refuses them the same way, before any work", async () => {
    const d = await run(["check", "--design", "nosuch", "--backend", "vmx"]);
    const b = await run(["check", "--backend", "nosuch"]);
    expect([d.code, b.code, d.out, b.out]).toEqual([2, 2, "", ""]);
    expect(d.err).toMatch(/^kvmx: --design: unknown design "nosuch"/);
    expect(b.err).toMatch(/^kvmx: --backend: unknown backend "nosuch"/);
  });
  it("--design nosuch and --backend nosuch", async () => {
    const d = await run(["cost", "--design", "nosuch"]);
    const b = await run(["cost", "--backend", "nosuch"]);
    expect([d.code, b.code]).toEqual([2, 2]);
    expect(d.err).toMatch(/^kvmx: --design: unknown design "nosuch" \(known: fpstate, .*`--design help` describes them\)\n$/);
    expect(b.err).toMatch(/^kvmx: --backend: unknown backend "nosuch" \(known: vmx, .*`--backend help` describes them\)\n$/);
  });
});

describe("file errors: one line naming the file and the reason", () => {
  it("kvmx run of a missing file or a directory exits 65", async () => {
    const missing = await run(["run", "nonexistent.yaml"]);
    expect([missing.code, missing.err]).toEqual([65, "kvmx: nonexistent.yaml: cannot read scenario file: no such file or directory (ENOENT)\n"]);
    const dir = await run(["run", scratch]);
    expect([dir.code, dir.err]).toEqual([65, `kvmx: ${scratch}: cannot read scenario file: is a directory (EISDIR)\n`]);
    const design = await run(["designs", "nope.yaml"]);
    expect([design.code, design.err]).toEqual([65, "kvmx: nope.yaml: cannot read design file: no such file or directory (ENOENT)\n"]);
  });
  it("output paths are checked up front: exit 73", async () => {
    const io = captureIo();
    io.cwd; // relative paths resolve against io.cwd
    await expect(checkOutputFile(io, join(scratch, "no-dir", "x.html"), "--html")).rejects.toMatchObject({ category: "cannot-create", message: expect.stringMatching(/cannot write --html file: no such file or directory \(ENOENT\)$/) });
    await expect(checkOutputFile(io, scratch, "--html")).rejects.toMatchObject({ message: `${scratch}: cannot write --html file: is a directory` });
    await expect(checkOutputFile(io, join(scratch, "ok.html"), "--html")).resolves.toBeUndefined();
    const file = join(scratch, "a-file");
    writeFileSync(file, "x");
    await expect(checkOutputDir(io, file, "--trace-out")).rejects.toMatchObject({ category: "cannot-create", message: expect.stringMatching(/it exists and is not a directory$/) });
    await expect(checkOutputDir(io, join(scratch, "new", "dir"), "--trace-out")).resolves.toBeUndefined();
    await expect(writeOutputFile(io, join(file, "x"), "data")).rejects.toMatchObject({ category: "cannot-create" });
    const enc = await run(["xsave", "encode", "img.json", "--out-file", join(scratch, "no-dir", "x.bin")], { "img.json": "{}" });
    expect([enc.code, enc.err]).toEqual([73, expect.stringMatching(/no-dir\/x.bin: cannot write --out-file file: no such file or directory \(ENOENT\)\n$/)]);
  });
  it("kvmx check's --html, --trace-out, --merge and --weights are checked before it checks anything", async () => {
    const missingDir = join(scratch, "no-dir", "x.html");
    const html = await run(["check", "--backend", "vmx", "--html", missingDir]);
    expect([html.code, html.out, html.err]).toEqual([73, "", `kvmx: ${missingDir}: cannot write --html file: no such file or directory (ENOENT)\n`]);
    const file = join(scratch, "not-a-dir");
    writeFileSync(file, "x");
    const trace = await run(["check", "--backend", "vmx", "--trace-out", file]);
    expect([trace.code, trace.err]).toEqual([73, `kvmx: ${file}: cannot use as the --trace-out directory: it exists and is not a directory\n`]);
    const merge = await run(["check", "--merge", "nonexistent.json"]);
    expect([merge.code, merge.err]).toEqual([65, "kvmx: nonexistent.json: cannot read --merge file: no such file or directory (ENOENT)\n"]);
    const weights = await run(["cost", "--weights", scratch]);
    expect([weights.code, weights.err]).toEqual([65, `kvmx: ${scratch}: cannot read --weights file: is a directory (EISDIR)\n`]);
  });
  it.runIf(process.getuid?.() !== 0)("an unwritable directory is exit 73 too", async () => {
    const ro = join(scratch, "ro");
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    await expect(checkOutputFile(captureIo(), join(ro, "x"), "--html")).rejects.toMatchObject({ message: expect.stringMatching(/permission denied \(EACCES\)$/) });
  });
});

describe("kvmx probe without a device", () => {
  it("one line with the likely causes, and a JSON error object with --json", async () => {
    const human = await run(["probe", "--device", "/nonexistent/kvm"]);
    expect(human.code).toBe(69);
    expect(human.err.split("\n")).toHaveLength(2);
    expect(human.err).toMatch(/^kvmx: open \/nonexistent\/kvm: ENOENT \(errno 2\): no usable KVM — likely .*kvmx lab probe/);
    const json = await run(["probe", "--device", "/nonexistent/kvm", "--json"]);
    expect(json.code).toBe(69);
    expect(JSON.parse(json.out)).toMatchObject({ schemaVersion: 1, device: "/nonexistent/kvm", error: { kind: "unavailable", errno: "ENOENT", causes: expect.any(Array) } });
  });
  it("names the cause the host shows", () => {
    const lab = expect.stringMatching(/kvmx lab probe/);
    expect(kvmOpenCauses("ENOENT", { cpuFlags: ["fpu", "hypervisor"], modules: ["kvm"] })).toEqual([expect.stringMatching(/inside a guest without nested virtualisation/), lab]);
    expect(kvmOpenCauses("ENOENT", { cpuFlags: ["fpu", "vmx"], modules: [] })).toEqual([expect.stringMatching(/module is not loaded/), lab]);
    expect(kvmOpenCauses("EACCES", { cpuFlags: ["vmx"], modules: ["kvm_intel"] })).toEqual([expect.stringMatching(/no permission/), lab]);
    expect(kvmOpenCauses("ENXIO", { cpuFlags: ["svm"], modules: ["kvm_amd"] })).toEqual([expect.stringMatching(/no usable hardware support/), lab]);
  });
});

describe("colour and width", () => {
  it("colour only on a terminal stdout, whatever FORCE_COLOR, CI or stderr say", () => {
    const io = (stdoutIsTty: boolean) => ({ ...captureIo(), stdoutIsTty, stderrIsTty: true });
    expect(stdoutColour(io(false), { FORCE_COLOR: "1", CI: "true" })).toBe(false);
    expect(stdoutColour(io(true), {})).toBe(true);
    expect(stdoutColour(io(true), { NO_COLOR: "1" })).toBe(false);
    expect(stdoutColour(io(true), { FORCE_COLOR: "0" })).toBe(false);
  });
  it("kvmx cost's table fits 100 columns (split, key columns repeated) and has no escape codes when redirected", async () => {
    const r = await run(["cost", "--backend", "vmx", "tdx"]);
    expect(r.code).toBe(0);
    expect(widest(r.out)).toBeLessThanOrEqual(100);
    expect(r.out).not.toMatch(/\u001b\[/);
    const parts = r.out.split("\n\n");
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts.filter((p) => p.includes("┌"))) expect(part).toMatch(/│ design\s+│ backend\s+│ guest\s+│ trip\s+│/);
  });
  it("renderTable wraps wordy columns first, then splits", () => {
    const wrapped = renderTable({ head: ["name", "description"], rows: [["a", "word ".repeat(40).trim()]] });
    expect(widest(wrapped)).toBeLessThanOrEqual(100);
    expect(wrapped.split("\n").length).toBeGreaterThan(4);
    const head = ["key", ...Array.from({ length: 12 }, (_, i) => `column${i}`)];
    const split = renderTable({ head, rows: [["k", ...Array.from({ length: 12 }, () => "0123456789")]], maxWidth: 60 });
    expect(widest(split)).toBeLessThanOrEqual(60);
    const parts = split.split("\n\n");
    expect(parts.length).toBeGreaterThan(2);
    for (const p of parts) expect(p).toMatch(/│ key │/);
    for (let i = 0; i < 12; i++) expect(split).toContain(`column${i}`);
  });
});
