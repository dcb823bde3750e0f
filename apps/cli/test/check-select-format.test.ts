import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

async function run(args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

type ListedCell = { id: string; design: string; backend: string; host: string; guest: string; profile: string };
type ReportCell = { design: string; backend: string; host: { cpuApx: boolean; kernelApx: boolean }; guest: { apx: boolean }; verdict: string; cost?: unknown };
const idOf = (c: ReportCell) =>
  `${c.design}.${c.backend}.${!c.host.cpuApx ? "host-noapx" : c.host.kernelApx ? "host-apx-mapxf" : "host-apx"}.guest-${c.guest.apx ? "apx" : "noapx"}`;

// Small cells: fpstate on svm (one safe cell explores in well under a second), asm-unconditional on
// vmx and c-xfeatures on vmx at a small depth (their counterexamples are one and two events long).
const QUICK = ["--sweep", "default", "--workers", "0"];

describe("kvmx check --list", () => {
  it("prints the cells the options select, one a line (id, design, backend, start), exploring nothing", async () => {
    const r = await run(["check", "--list", "--design", "fpstate", "--backend", "svm"]);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split("\n");
    expect(lines).toHaveLength(6);
    expect(lines[0]).toMatch(/^fpstate\.svm\.host-noapx\.guest-noapx +fpstate +svm +host no-apx \/ guest no-apx$/);
    expect(lines[5]).toMatch(/^fpstate\.svm\.host-apx-mapxf\.guest-apx +fpstate +svm +host apx\+mapxf \/ guest apx$/);
    expect(r.out).not.toMatch(/states|safe|violation/);
  });

  it("--json is an array; the ids are those a run's cells have, for the same options", async () => {
    const opts = ["--design", "fpstate", "--host", "Hk", "--guest", "apx"];
    const list = JSON.parse((await run(["check", "--list", "--json", ...opts])).out) as ListedCell[];
    expect(list.map((c) => c.backend)).toEqual(["vmx", "vmx-nested", "tdx", "svm", "sev-es"]);
    expect(list.every((c) => c.host === "mapxf" && c.guest === "apx" && c.profile === "host apx+mapxf / guest apx")).toBe(true);
    const svm = JSON.parse((await run(["check", ...opts, "--backend", "svm", ...QUICK, "--json", "--no-cost"])).out) as { cells: ReportCell[] };
    expect(svm.cells.map(idOf)).toEqual(list.filter((c) => c.backend === "svm").map((c) => c.id));
  });
});

describe("kvmx check --cell, --host, --guest", () => {
  it("--cell runs exactly the named cells (any backend, svm-apx too, when --backend is not given)", async () => {
    const ids = ["fpstate.svm.host-apx.guest-noapx", "fpstate.svm-apx.host-noapx.guest-noapx"];
    const r = await run(["check", "--cell", ...ids, ...QUICK, "--json", "--no-cost"]);
    expect(r.code).toBe(0);
    const cells = (JSON.parse(r.out) as { cells: ReportCell[] }).cells;
    expect(cells.map(idOf)).toEqual([ids[0], ids[1]]);
    expect(cells.map((c) => c.verdict)).toEqual(["safe", "safe"]);
  });

  it("an unknown cell id is a usage error that says how to list them; an empty intersection is one too", async () => {
    const unknown = await run(["check", "--cell", "fpstate.svm.host-apx.guest-maybe"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown cell "fpstate.svm.host-apx.guest-maybe"');
    expect(unknown.err).toContain("kvmx check --list");
    const empty = await run(["check", "--cell", "fpstate.svm.host-apx.guest-noapx", "--backend", "vmx"]);
    expect(empty.code).toBe(2);
    expect(empty.err).toContain("no cell matches");
  });

  it("--host and --guest select matrix columns; the others are not explored at all", async () => {
    const r = await run(["check", "--design", "fpstate", "--backend", "svm", "--host", "apx", "--guest", "no-apx", ...QUICK, "--json", "--no-cost"]);
    expect(r.code).toBe(0);
    const cells = (JSON.parse(r.out) as { cells: ReportCell[] }).cells;
    expect(cells.map(idOf)).toEqual(["fpstate.svm.host-apx.guest-noapx"]);
    // The tags the matrix header shows work as well, and the text table has only the chosen column.
    const text = await run(["check", "--design", "fpstate", "--backend", "svm", "--host", "H+", "--guest", "no-apx", ...QUICK, "--no-cost"]);
    expect(text.out).toMatch(/│ H\+ g- │/);
    expect(text.out).not.toMatch(/H- g|Hk g|H\+ g\+/);
    expect((await run(["check", "--host", "apx9", "--list"])).code).toBe(2);
    expect((await run(["check", "--guest", "g+", "--list"])).code).toBe(2);
  });
});

describe("kvmx check --format", () => {
  const asm = ["check", "--design", "asm-unconditional", "--backend", "vmx", "--depth", "2", ...QUICK, "--no-cost"];

  it("tap: a TAP 13 plan and one test per cell; violations not ok with a YAML block, n/a SKIP, bounded TODO; exit code unchanged", async () => {
    const r = await run([...asm, "--format", "tap"]);
    expect(r.code).toBe(1);
    const lines = r.out.split("\n");
    expect(lines.slice(0, 2)).toEqual(["TAP version 13", "1..6"]);
    const tests = lines.filter((l) => /^(not )?ok \d+ - /.test(l));
    expect(tests.map((l) => Number(/ok (\d+) -/.exec(l)![1]))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(tests[0]).toMatch(/^not ok 1 - asm-unconditional\.vmx\.host-noapx\.guest-noapx safe≤2 # TODO bounded search/);
    expect(tests[1]).toMatch(/^ok 2 - asm-unconditional\.vmx\.host-noapx\.guest-apx # SKIP not applicable: /);
    expect(tests[2]).toBe("not ok 3 - asm-unconditional.vmx.host-apx.guest-noapx violation (no-host-ud)");
    expect(r.out).toMatch(/violation \(no-host-ud\)\n {2}---\n {2}cell: "asm-unconditional on vmx, host apx \/ guest no-apx"\n {2}invariant: "no-host-ud"\n[\s\S]*? {2}site: "vmx:[^"]+"\n[\s\S]*? {2}events:\n {4}- "guest-xsetbv value=0x[0-9a-f]+"\n/);
    // The bounded search alone: exit 3, still a TODO and no failure.
    const bounded = await run(["check", "--design", "hw-xcr0-switch", "--backend", "svm", "--depth", "1", ...QUICK, "--no-cost", "--format", "tap"]);
    expect(bounded.code).toBe(3);
    expect(bounded.out).not.toMatch(/^not ok \d+ - (?!.*# TODO)/m);
    expect(bounded.out).toMatch(/# TODO bounded search \(--depth\)/);
  });

  it("junit: a testsuite per backend, a testcase per cell, failures with the counterexample, skipped n/a", async () => {
    const r = await run([...asm, "--backend", "vmx", "svm", "--format", "junit"]);
    expect(r.code).toBe(1);
    expect(r.out.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="kvmx check" tests="12" ')).toBe(true);
    expect(r.out.trimEnd().endsWith("</testsuites>")).toBe(true);
    expect(r.out.match(/<testsuite /g)).toHaveLength(2);
    expect(r.out.match(/<testsuite /g)!.length).toBe(r.out.match(/<\/testsuite>/g)!.length);
    expect(r.out.match(/<testcase /g)).toHaveLength(12);
    expect(r.out).toMatch(/<testsuite name="vmx" tests="6" failures="4" errors="0" skipped="2"/);
    expect(r.out).toMatch(/<failure message="violation \(no-host-ud\): [^"]*" type="no-host-ud">[^<]*events:\n1\. guest-xsetbv value=0x[0-9a-f]+ +&lt;- breaks no-host-ud at vmx:/);
    expect(r.out).toMatch(/<skipped message="not applicable: [^"]+"\/>/);
  });

  it("--format with --json, and --verbose with a machine format, are usage errors", async () => {
    expect((await run([...asm, "--format", "tap", "--json"])).code).toBe(2);
    expect((await run([...asm, "--format", "xml"])).code).toBe(2);
    expect((await run([...asm, "--verbose", "--json"])).code).toBe(2);
    expect((await run([...asm, "--verbose", "--format", "junit"])).code).toBe(2);
  });
});

describe("kvmx check --no-cost, --verbose", () => {
  it("--no-cost leaves out the cost table and measures nothing", async () => {
    const args = ["check", "--design", "fpstate", "--backend", "svm", "--host", "apx", "--guest", "no-apx", ...QUICK];
    expect((await run(args)).out).toContain("Cost per round trip");
    expect((await run([...args, "--no-cost"])).out).not.toContain("Cost per round trip");
    const json = JSON.parse((await run([...args, "--json"])).out) as { cells: ReportCell[] };
    const none = JSON.parse((await run([...args, "--json", "--no-cost"])).out) as { cells: ReportCell[] };
    expect(json.cells[0]!.cost).toBeDefined();
    expect(none.cells[0]!.cost).toBeUndefined();
  });

  it("--verbose shows the state after every event of a counterexample, replayed on a machine of its cell", async () => {
    // c-xfeatures on vmx, APX host and guest: XSETBV enabling APX, then a fastpath WRMSRNS from R16 that KVM reads stale.
    const args = ["check", "--design", "c-xfeatures", "--backend", "vmx", "--host", "apx", "--guest", "apx", "--depth", "2", ...QUICK, "--no-cost"];
    const plain = await run(args);
    const r = await run([...args, "--verbose"]);
    expect(r.code).toBe(1);
    expect(plain.out).not.toContain("XCR0 live");
    const block = /\n {2}1\. guest-xsetbv value=(0x[0-9a-f]+)\n([\s\S]*?)\n {2}2\. guest-wrmsrns-imm reg=r16 value=(0x[0-9a-f]+)[^\n]*\n([\s\S]*?)\n\n/.exec(r.out);
    expect(block).not.toBeNull();
    const [, xcr0, after1, value, after2] = block!;
    // After the XSETBV: KVM's guest XCR0 is the value written; the guest has not written R16.
    expect(after1).toContain(`guest ${xcr0} ·`);
    expect(after1).toMatch(/guest's R16 0x0\b/);
    expect(after1).toMatch(/regs_avail [^\n]+ · regs_dirty /);
    // After the WRMSRNS: the guest's R16 is the value it wrote, and so is KVM's copy in regs[].
    expect(after2).toContain(`guest's R16 ${value}`);
    expect(after2).toContain(`regs[R16] ${value} (guest0)`);
    expect(after2).toMatch(/R16–R31 hold host-user/);
  });
});

describe("kvmx check --help", () => {
  it("lists every new option with its choices", async () => {
    const r = await run(["check", "--help"]);
    const help = r.out.replace(/\s+/g, " ");
    for (const opt of ["--list", "--cell <id...>", "--host <kind...>", "--guest <kind...>", "--format <format>", "--no-cost", "--verbose"]) expect(help).toContain(opt);
    expect(help).toContain('(choices: "no-apx", "apx", "mapxf", "H-", "H+", "Hk")');
    expect(help).toContain('(choices: "no-apx", "apx")');
    expect(help).toContain('(choices: "text", "tap", "junit")');
    expect(help).toContain("intersected with --design");
  });
});

describe("kvmx check without a budget on large cells", () => {
  // early-xcr0-misordered breaks at once on an APX host, so the nested cell is quick to check.
  const cell = ["--cell", "early-xcr0-misordered.vmx-nested.host-apx.guest-noapx", ...QUICK, "--no-cost"];
  it("says up front that nested-VMX cells with APX run to the fixpoint unbounded, and how to bound them", async () => {
    const r = await run(["check", ...cell]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^kvmx check: 1 nested-VMX cell with APX will be explored to the fixpoint with no budget; .*--max-seconds N bounds each cell/m);
  });
  it("says nothing of the kind with a budget, or for cells without APX", async () => {
    expect((await run(["check", ...cell, "--max-seconds", "60"])).err).not.toMatch(/no budget/);
    expect((await run(["check", "--cell", "fpstate.svm.host-noapx.guest-noapx", ...QUICK])).err).not.toMatch(/no budget/);
    // TDX cells are small since saved RIPs left the fingerprint: no warning for them.
    expect((await run(["check", "--cell", "fpstate.tdx.host-apx.guest-noapx", ...QUICK, "--no-cost"])).err).not.toMatch(/no budget/);
  });
});
