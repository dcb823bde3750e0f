import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { renderHtmlReport, runMatrix } from "@kvmx/check";
import { buildCheckProvider } from "../src/commands/check.js";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

// One design on one backend: c-xfeatures breaks (a stale fastpath read) on an APX host.
const report = await runMatrix(buildCheckProvider({ designFiles: [] }), { designs: ["c-xfeatures"], backends: ["vmx"], depth: 2, workers: 0 });
const html = renderHtmlReport(report, { title: "c-xfeatures on vmx" });
const counterexamples = report.cells.flatMap((c) => [c.counterexample, ...(c.otherCounterexamples ?? [])].filter((x) => x !== undefined));

const unescape = (s: string) => s.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&amp;", "&");
const scratch = mkdtempSync(join(tmpdir(), "kvmx-html-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("the HTML report of kvmx check", () => {
  it("puts the legends before the matrix", () => {
    const legend = html.indexOf(`class="legends"`);
    expect(legend).toBeGreaterThan(0);
    expect(legend).toBeLessThan(html.indexOf("Verdict matrix"));
    expect(html.slice(legend, html.indexOf("Verdict matrix"))).toMatch(/H- host CPU without APX[\s\S]*R16–R31 owner/);
  });

  it("writes every step's site name on the timeline, the failing one in red", () => {
    expect(counterexamples.length).toBeGreaterThan(0);
    for (const ce of counterexamples) {
      for (const ev of ce.trace) for (const step of ev.steps) expect(html).toContain(`>${step.site}</text>`);
    }
    expect(html).toMatch(/<text class="site"[^>]*fill="#b3261e" font-weight="bold">x86:fastpath<\/text>/);
  });

  it("gives every counterexample a replay command that kvmx run accepts", async () => {
    const snippets = [...html.matchAll(/<pre class="replay">([\s\S]*?)<\/pre>/g)].map((m) => unescape(m[1]!));
    expect(snippets).toHaveLength(counterexamples.length);
    for (const snippet of snippets) {
      const m = /^cat > '([^']+)' <<'KVMX_SCENARIO'\n([\s\S]*)\nKVMX_SCENARIO\nkvmx run '\1'$/.exec(snippet);
      expect(m, snippet.slice(0, 200)).not.toBeNull();
      const file = join(scratch, m![1]!);
      writeFileSync(file, m![2]! + "\n");
      const io = captureIo();
      // The scenario expects the violation the checker found, so replaying it succeeds.
      expect(await main(["run", file], io), io.stderr()).toBe(0);
      expect(io.stdout()).toContain("expectation holds");
    }
  });
});
