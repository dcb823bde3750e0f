import { describeTag, type SiteKind } from "@kvmx/core";
import type { CounterexampleReport } from "./check-report.js";

/** Lanes of the timeline, top to bottom, shared by the SVG and the Chrome trace. */
export const LANES: readonly { kind: SiteKind; title: string }[] = [
  { kind: "user", title: "userspace (VMM)" },
  { kind: "c", title: "host C" },
  { kind: "asm", title: "host asm" },
  { kind: "hw", title: "VM-entry/exit (hw)" },
  { kind: "guest", title: "guest" },
  { kind: "nmi", title: "NMI handler" },
];

const STEP_US = 10;
const APX_BIT = 1n << 19n;

/**
 * A counterexample as Chrome trace-event JSON (Perfetto and chrome://tracing open it): one thread
 * per lane, a slice per trace step (10 µs each — the model has no time, only order), a slice per
 * event, counters for the live XCR0.APX bit and for how many of R16–R31 hold guest / host values,
 * and an instant event at the violation.
 */
export function chromeTrace(ce: CounterexampleReport, title: string): object {
  const events: object[] = [];
  const pid = 1;
  events.push({ ph: "M", pid, name: "process_name", args: { name: title } });
  events.push({ ph: "M", pid, tid: 0, name: "thread_name", args: { name: "events" } });
  LANES.forEach((l, i) => events.push({ ph: "M", pid, tid: i + 1, name: "thread_name", args: { name: l.title } }));
  let t = 0;
  ce.trace.forEach((ev, evIndex) => {
    const start = t;
    for (const step of ev.steps) {
      const tid = LANES.findIndex((l) => l.kind === step.kind) + 1;
      const owners = step.egprTags.map(describeTag);
      events.push({
        ph: "X", pid, tid, ts: t, dur: STEP_US, name: step.site,
        args: { description: step.description, xcr0: `0x${BigInt(step.xcr0).toString(16)}`, r16_r31: owners.join(" ") },
      });
      const xcr0 = BigInt(step.xcr0);
      const guest = owners.filter((o) => o.startsWith("guest")).length;
      const host = owners.filter((o) => o.startsWith("host")).length;
      events.push({ ph: "C", pid, ts: t, name: "XCR0.APX", args: { apx: (xcr0 & APX_BIT) !== 0n ? 1 : 0 } });
      events.push({ ph: "C", pid, ts: t, name: "R16-R31 owners", args: { guest, host } });
      for (const v of step.violations ?? []) {
        events.push({ ph: "i", s: "g", pid, tid, ts: t + STEP_US / 2, name: `violation: ${v.invariant}`, args: { message: v.message } });
      }
      t += STEP_US;
    }
    events.push({
      ph: "X", pid, tid: 0, ts: start, dur: Math.max(t - start, STEP_US),
      name: eventLabel(ev.event), args: { failing: evIndex === ce.failingStep },
    });
  });
  return { traceEvents: events, displayTimeUnit: "ns", otherData: { invariant: ce.invariant, message: ce.message } };
}

/** "guest-write r16=0x1" for an event object (any JSON). */
export function eventLabel(e: unknown): string {
  if (typeof e !== "object" || e === null) return String(e);
  const o = e as Record<string, unknown>;
  const head = typeof o.kind === "string" ? o.kind : typeof o.op === "string" ? o.op : "event";
  const rest = Object.entries(o)
    .filter(([k]) => k !== "kind" && k !== "op")
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `0x${x.toString(16)}` : x)) : String(v)}`);
  return [head, ...rest].join(" ");
}
