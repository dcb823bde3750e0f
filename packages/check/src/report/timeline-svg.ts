import { describeTag, isGuestTag, Tag } from "@kvmx/core";
import type { CounterexampleReport } from "./check-report.js";
import { eventLabel, LANES } from "./chrome-trace.js";
import { escapeHtml } from "./escape-html.js";

const STEP_W = 18;
const LABEL_W = 150;
const EVENT_H = 34;
const LANE_H = 20;
const APX_H = 24;
const EGPR_H = 7;
/** The site names along the bottom, one vertical label per step (up to ~32 characters at 10 px). */
const SITE_H = 190;
const SITE_CHARS = 32;
const APX_BIT = 1n << 19n;

const LANE_FILL: Record<string, string> = {
  user: "#8d6e63",
  c: "#1e88e5",
  asm: "#3949ab",
  hw: "#757575",
  guest: "#43a047",
  nmi: "#fb8c00",
};

/** Colour of a provenance tag in the R16–R31 strip: init grey, host-user blue, host-kernel purple, guests greens. */
export function tagColour(tag: number): string {
  if (tag === Tag.init) return "#e0e0e0";
  if (tag === Tag.hostUser) return "#1565c0";
  if (tag === Tag.hostKernel) return "#8e24aa";
  if (isGuestTag(tag)) return ["#2e7d32", "#9ccc65", "#00897b", "#c0ca33"][(tag - Tag.guest(0)) % 4] ?? "#2e7d32";
  return "#000000";
}

/**
 * A counterexample's timeline as inline SVG (the HTML report): one column per trace step; lanes for
 * userspace, host C, host asm, VM-entry/exit, guest and NMI handler; the live XCR0.APX bit; for each of
 * R16–R31, whose value sits there after the step; and under it all each step's site name, written
 * out (the failing site in red), so the timeline reads without hovering.
 */
export function timelineSvg(ce: CounterexampleReport): string {
  const steps = ce.trace.flatMap((ev, evIndex) => ev.steps.map((s) => ({ ...s, evIndex })));
  const width = LABEL_W + Math.max(steps.length, 1) * STEP_W + 10;
  const lanesTop = EVENT_H;
  const apxTop = lanesTop + LANES.length * LANE_H + 6;
  const egprTop = apxTop + APX_H + 6;
  const siteTop = egprTop + 16 * EGPR_H + 6;
  const height = siteTop + SITE_H;
  const x = (i: number) => LABEL_W + i * STEP_W;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="timeline of the counterexample">`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  // Event bands along the top.
  let i0 = 0;
  ce.trace.forEach((ev, evIndex) => {
    const n = Math.max(ev.steps.length, 1);
    const failing = evIndex === ce.failingStep;
    const label = `${evIndex + 1}. ${eventLabel(ev.event)}`;
    parts.push(
      `<g><title>${escapeHtml(label)}</title><rect x="${x(i0)}" y="2" width="${n * STEP_W - 2}" height="${EVENT_H - 6}" rx="3" fill="${failing ? "#fde0dc" : "#eef2f7"}" stroke="${failing ? "#b3261e" : "#b0bec5"}"/>` +
        `<text x="${x(i0) + 4}" y="${EVENT_H / 2 + 3}" font-size="11" font-family="sans-serif" fill="#212121">${escapeHtml(clip(label, Math.floor((n * STEP_W - 8) / 6)))}</text></g>`,
    );
    i0 += ev.steps.length;
  });
  // Lane labels and guides.
  LANES.forEach((lane, li) => {
    const y = lanesTop + li * LANE_H;
    parts.push(`<text x="4" y="${y + LANE_H - 6}" font-size="11" font-family="sans-serif" fill="#424242">${escapeHtml(lane.title)}</text>`);
    parts.push(`<line x1="${LABEL_W}" y1="${y + LANE_H}" x2="${width}" y2="${y + LANE_H}" stroke="#eceff1"/>`);
  });
  parts.push(`<text x="4" y="${apxTop + APX_H - 8}" font-size="11" font-family="sans-serif" fill="#424242">live XCR0.APX</text>`);
  parts.push(`<text x="4" y="${egprTop + 8 * EGPR_H}" font-size="11" font-family="sans-serif" fill="#424242">R16–R31 owner</text>`);
  parts.push(`<text x="4" y="${siteTop + 12}" font-size="11" font-family="sans-serif" fill="#424242">site</text>`);
  // Steps.
  const apxPoints: string[] = [];
  steps.forEach((s, i) => {
    const li = Math.max(LANES.findIndex((l) => l.kind === s.kind), 0);
    const bad = (s.violations ?? []).length > 0;
    const tip = `${s.site} — ${s.description}\nXCR0=0x${BigInt(s.xcr0).toString(16)}\nR16–R31: ${s.egprTags.map(describeTag).join(" ")}` +
      (bad ? `\nVIOLATION ${s.violations!.map((v) => `${v.invariant}: ${v.message}`).join("; ")}` : "");
    parts.push(
      `<g><title>${escapeHtml(tip)}</title><rect x="${x(i) + 1}" y="${lanesTop + li * LANE_H + 2}" width="${STEP_W - 2}" height="${LANE_H - 4}" rx="2" fill="${LANE_FILL[s.kind] ?? "#000"}"` +
        (bad ? ` stroke="#b3261e" stroke-width="3"` : "") + `/></g>`,
    );
    if (bad) {
      parts.push(`<line x1="${x(i) + STEP_W / 2}" y1="${lanesTop}" x2="${x(i) + STEP_W / 2}" y2="${siteTop - 2}" stroke="#b3261e" stroke-width="2" stroke-dasharray="4 2"/>`);
    }
    const on = (BigInt(s.xcr0) & APX_BIT) !== 0n;
    const y = on ? apxTop + 3 : apxTop + APX_H - 3;
    apxPoints.push(`${x(i)},${y}`, `${x(i) + STEP_W},${y}`);
    s.egprTags.forEach((tag, r) => {
      parts.push(`<rect x="${x(i)}" y="${egprTop + r * EGPR_H}" width="${STEP_W}" height="${EGPR_H - 1}" fill="${tagColour(tag)}"/>`);
    });
    // The site's name, written top to bottom in the step's column.
    const tx = x(i) + 4; // rotated 90°, the glyphs stand to the right of tx: inside the column
    parts.push(
      `<text class="site" x="${tx}" y="${siteTop}" transform="rotate(90 ${tx} ${siteTop})" font-size="10" font-family="ui-monospace,monospace" ` +
        `fill="${bad ? "#b3261e" : "#37474f"}"${bad ? ` font-weight="bold"` : ""}>${escapeHtml(clip(s.site, SITE_CHARS))}</text>`,
    );
  });
  if (apxPoints.length > 0) parts.push(`<polyline points="${apxPoints.join(" ")}" fill="none" stroke="#d81b60" stroke-width="2"/>`);
  parts.push(`</svg>`);
  return parts.join("\n");
}

const clip = (s: string, n: number) => (s.length <= n ? s : n <= 1 ? "" : `${s.slice(0, n - 1)}…`);
