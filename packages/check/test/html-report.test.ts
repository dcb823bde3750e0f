import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runMatrix } from "../src/matrix/run-matrix.js";
import { chromeTrace } from "../src/report/chrome-trace.js";
import { renderHtmlReport, VERDICT_COLOURS } from "../src/report/html-report.js";
import { decodePng } from "./png-pixels.js";
import { toyProvider } from "./toy-provider.js";

const CHROMIUM = "/usr/bin/chromium";
const chromiumReason = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium)`;
if (chromiumReason) console.warn(`skipping the report screenshot test: ${chromiumReason}`);

const report = await runMatrix(toyProvider(), { depth: 4 });

describe("renderHtmlReport", () => {
  const html = renderHtmlReport(report, { title: "toy check" });

  it("is self-contained: no external scripts, styles, fonts or images", () => {
    expect(html).not.toMatch(/<script|<link|@import|url\(|src=/i);
    expect(html.startsWith("<!doctype html>")).toBe(true);
  });

  it("shows the matrix, every counterexample with a timeline, and the cost table", () => {
    const violations = report.cells.filter((c) => c.verdict === "violation");
    expect(violations.length).toBeGreaterThan(0);
    expect(html.match(/<section class="ce"/g)?.length).toBe(violations.length);
    expect(html.match(/<svg /g)?.length).toBe(violations.length);
    expect(html).toMatch(/violation<br><small>guest-integrity<\/small>/);
    expect(html).toContain("n.a.");
    expect(html).toContain("Cost per round trip");
    // Lanes of the timeline.
    for (const lane of ["host C", "host asm", "guest", "NMI handler", "live XCR0.APX", "R16–R31 owner"]) expect(html).toContain(lane);
  });

  it("escapes text from events and messages", () => {
    const evil = structuredClone(report);
    const ce = evil.cells.find((c) => c.counterexample)!.counterexample!;
    ce.message = "<script>alert(1)</script>";
    expect(renderHtmlReport(evil)).not.toContain("<script>alert");
  });
});

describe("chromeTrace", () => {
  it("writes one slice per step on its lane, event slices and the violation instant", () => {
    const ce = report.cells.find((c) => c.counterexample)!.counterexample!;
    const t = chromeTrace(ce, "toy") as { traceEvents: { ph: string; tid?: number; name: string }[] };
    const steps = ce.trace.reduce((n, e) => n + e.steps.length, 0);
    expect(t.traceEvents.filter((e) => e.ph === "X" && e.tid !== 0)).toHaveLength(steps);
    expect(t.traceEvents.filter((e) => e.ph === "X" && e.tid === 0)).toHaveLength(ce.events.length);
    expect(t.traceEvents.filter((e) => e.ph === "i").map((e) => e.name)).toEqual([`violation: ${ce.invariant}`]);
    expect(() => JSON.parse(JSON.stringify(t))).not.toThrow();
  });
});

describe.skipIf(chromiumReason !== undefined)("the report in headless chromium", () => {
  it("renders a non-blank page that shows the matrix colours", () => {
    const dir = mkdtempSync(join(tmpdir(), "kvmx-report-"));
    try {
      const page = join(dir, "report.html");
      const png = join(dir, "shot.png");
      // Every verdict on the page: one safe cell shown as not exercised (the toy has no protected vCPUs).
      const shown = structuredClone(report);
      shown.cells.find((c) => c.verdict === "safe")!.verdict = "not-exercised";
      writeFileSync(page, renderHtmlReport(shown, { title: "toy check" }));
      execFileSync(
        CHROMIUM,
        [
          "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", `--user-data-dir=${join(dir, "profile")}`,
          `--screenshot=${png}`, "--window-size=1280,900", `file://${page}`,
        ],
        { stdio: "pipe", timeout: 50_000 },
      );
      const img = decodePng(readFileSync(png));
      expect(img.width).toBe(1280);
      const colours = new Set<number>();
      const count = new Map<string, number>();
      const hex = (o: number) => `#${[0, 1, 2].map((k) => img.rgba[o + k]!.toString(16).padStart(2, "0")).join("")}`;
      for (let o = 0; o < img.rgba.length; o += 4) {
        colours.add((img.rgba[o]! << 16) | (img.rgba[o + 1]! << 8) | img.rgba[o + 2]!);
        const h = hex(o);
        count.set(h, (count.get(h) ?? 0) + 1);
      }
      // Non-blank: many distinct colours (text antialiasing, lanes, matrix).
      expect(colours.size).toBeGreaterThan(50);
      // The matrix: each verdict colour fills a visible area.
      for (const v of Object.values(VERDICT_COLOURS)) expect(count.get(v.bg) ?? 0).toBeGreaterThan(500);
      if (process.env.KVMX_KEEP_SCREENSHOT) writeFileSync(process.env.KVMX_KEEP_SCREENSHOT, readFileSync(png));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
