import { describe, expect, it } from "vitest";
import { cellId } from "../src/matrix/cell.js";
import { runMatrix, selectCells, unknownCellIds } from "../src/matrix/run-matrix.js";
import type { CheckReport } from "../src/report/check-report.js";
import { renderJunit } from "../src/report/junit-report.js";
import { renderTap } from "../src/report/tap-report.js";
import * as index from "../src/index.js";
import { toyProvider } from "./toy-provider.js";

/**
 * A tiny XML well-formedness check: one root element, every tag closed in order, attributes quoted,
 * no raw `<` or `&` outside markup and entities. Returns the element names in document order.
 */
function wellFormedElements(text: string): string[] {
  const body = text.replace(/^<\?xml [^?]*\?>\s*/, "");
  const stack: string[] = [];
  const names: string[] = [];
  let roots = 0;
  const token = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < body.length && (m = token.exec(body)) !== null) {
    pos = token.lastIndex;
    const [, close, name, attrs, selfClose, text] = m;
    if (text !== undefined) {
      if (stack.length === 0 && text.trim()) throw new Error(`text outside the root: ${JSON.stringify(text)}`);
      if (/&(?!(amp|lt|gt|quot|#\d+);)/.test(text)) throw new Error(`bare & in ${JSON.stringify(text)}`);
      continue;
    }
    if (attrs && /&(?!(amp|lt|gt|quot|#\d+);)/.test(attrs)) throw new Error(`bare & in attributes ${attrs}`);
    if (close) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes nothing open`);
      continue;
    }
    if (stack.length === 0) roots++;
    names.push(name!);
    if (!selfClose) stack.push(name!);
  }
  if (pos !== body.length) throw new Error(`not markup at offset ${pos}: ${JSON.stringify(body.slice(pos, pos + 40))}`);
  if (stack.length > 0) throw new Error(`unclosed ${stack.join(", ")}`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return names;
}

/** The toy matrix at depth 5: violations (toy-bug3, toy-leak on -mapxf hosts), n/a cells, bounded safe cells. */
async function toyReport(): Promise<CheckReport> {
  const r = await runMatrix(toyProvider(), { depth: 5 });
  // A message with every character XML and TAP must escape.
  const bad = r.cells.find((c) => c.verdict === "violation")!;
  bad.counterexample!.message = `a <b> & "c" 'd' \u0001 # e`;
  return r;
}

describe("test-report formats", () => {
  it("the package index exports both renderers", () => {
    expect(index.renderTap).toBe(renderTap);
    expect(index.renderJunit).toBe(renderJunit);
  });

  it("TAP: version line, a plan, one numbered test per cell with SKIP for n/a and TODO for bounded cells", async () => {
    const report = await toyReport();
    const tap = renderTap(report);
    const lines = tap.split("\n");
    expect(lines[0]).toBe("TAP version 13");
    expect(lines[1]).toBe(`1..${report.cells.length}`);
    const tests = lines.filter((l) => /^(not )?ok \d+ - /.test(l));
    expect(tests.map((l) => Number(/ok (\d+) -/.exec(l)![1]))).toEqual(report.cells.map((_, i) => i + 1));
    report.cells.forEach((cell, i) => {
      const line = tests[i]!;
      expect(line).toContain(` - ${cellId(cell)}`);
      if (cell.verdict === "violation") expect(line).toBe(`not ok ${i + 1} - ${cellId(cell)} violation (${cell.invariant})`);
      else if (cell.verdict === "n/a") expect(line).toMatch(new RegExp(`^ok ${i + 1} - \\S+ # SKIP not applicable: `));
      else if (!cell.complete) expect(line).toMatch(/^not ok \d+ - \S+ safe≤5 # TODO bounded search \(--depth\)/);
      else expect(line).toBe(`ok ${i + 1} - ${cellId(cell)} safe`);
    });
    expect(report.cells.some((c) => c.verdict === "n/a") && report.cells.some((c) => c.verdict === "violation") && report.cells.some((c) => !c.complete && c.verdict === "safe")).toBe(true);
    // Every failing test has a YAML block (--- … ...) with the counterexample's events and site; the `#` in a message stays data.
    const failing = report.cells.filter((c) => c.verdict === "violation");
    expect(tap.match(/^ {2}---$/gm)).toHaveLength(failing.length);
    expect(tap.match(/^ {2}\.\.\.$/gm)).toHaveLength(failing.length);
    const block = /not ok \d+ - [^\n]*\n {2}---\n([\s\S]*?)\n {2}\.\.\./.exec(tap)![1]!;
    expect(block).toMatch(/^ {2}events:\n( {4}- "[^"\n]+"\n)+/m);
    expect(block).toContain(`  failing_event: ${failing[0]!.counterexample!.failingStep + 1}`);
    expect(tap).toContain(`  message: ${JSON.stringify(`a <b> & "c" 'd' \u0001 # e`)}`);
  });

  it("JUnit: well-formed XML, a testsuite per backend, a testcase per cell, failures and skips counted and escaped", async () => {
    const report = await toyReport();
    const xml = renderJunit(report);
    const names = wellFormedElements(xml);
    expect(names[0]).toBe("testsuites");
    expect(names.filter((n) => n === "testsuite")).toHaveLength(report.backends.length);
    expect(names.filter((n) => n === "testcase")).toHaveLength(report.cells.length);
    const failures = report.cells.filter((c) => c.verdict === "violation").length;
    const skipped = report.cells.filter((c) => c.verdict === "n/a" || (c.verdict === "safe" && !c.complete)).length;
    expect(names.filter((n) => n === "failure")).toHaveLength(failures);
    expect(names.filter((n) => n === "skipped")).toHaveLength(skipped);
    expect(xml).toMatch(new RegExp(`<testsuites name="kvmx check" tests="${report.cells.length}" failures="${failures}" errors="0" skipped="${skipped}"`));
    for (const b of report.backends) {
      const cells = report.cells.filter((c) => c.backend === b);
      expect(xml).toContain(`<testsuite name="${b}" tests="${cells.length}" failures="${cells.filter((c) => c.verdict === "violation").length}"`);
    }
    // Escaped, and the control character dropped (XML 1.0 cannot hold it).
    expect(xml).toContain("a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;  # e");
    expect(xml).not.toContain("\u0001");
    // The failure holds the counterexample's events.
    const bad = report.cells.find((c) => c.verdict === "violation")!;
    expect(xml).toMatch(new RegExp(`<testcase name="${cellId(bad).replaceAll(".", "\\.")}" classname="${bad.design}" time="[\\d.]+">\\n\\s*<failure [^>]*>[^<]*events:\\n1\\. `));
  });

  it("the well-formedness check rejects what it must", () => {
    expect(() => wellFormedElements("<a><b></a></b>")).toThrow();
    expect(() => wellFormedElements("<a>x & y</a>")).toThrow();
    expect(() => wellFormedElements('<a x="<"/>')).toThrow();
    expect(() => wellFormedElements("<a/><b/>")).toThrow();
    expect(wellFormedElements('<a x="1"><b/>t &amp; u</a>')).toEqual(["a", "b"]);
  });
});

describe("selectCells", () => {
  it("keeps only the host and guest starts asked for, then the named cells, in canonical order", () => {
    const p = toyProvider();
    const all = selectCells(p, {}).cells;
    expect(all).toHaveLength(p.designs.length * p.backends.length * 6);
    const mapxf = selectCells(p, { hosts: ["mapxf"], guests: ["apx"] }).cells;
    expect(mapxf).toHaveLength(p.designs.length * p.backends.length);
    expect(mapxf.every((c) => c.host.cpuApx && c.host.kernelApx && c.guest.apx)).toBe(true);
    const ids = [cellId(all[7]!), cellId(all[2]!)];
    expect(selectCells(p, { cells: ids }).cells.map(cellId)).toEqual([cellId(all[2]!), cellId(all[7]!)]);
    // An intersection: a named cell outside --backend is not selected.
    expect(selectCells(p, { cells: ids, backends: ["toyB"] }).cells.every((c) => c.backend === "toyB")).toBe(true);
    expect(unknownCellIds(p, [...ids, "toy-safe.toyC.host-apx.guest-apx"])).toEqual(["toy-safe.toyC.host-apx.guest-apx"]);
  });

  it("runMatrix explores only the selected cells", async () => {
    const r = await runMatrix(toyProvider(), { depth: 3, hosts: ["no-apx"], guests: ["no-apx"], cost: false });
    expect(r.cells).toHaveLength(6);
    expect(r.cells.every((c) => !c.host.cpuApx && !c.guest.apx && c.cost === undefined)).toBe(true);
  });
});
