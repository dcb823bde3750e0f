/**
 * A canonical string for an event (sorted object keys, bigints as 0x… hex), so two events built
 * separately — one parsed from a scenario file, one from `events()` — compare equal when they are.
 */
export function eventKey(event: unknown): string {
  return JSON.stringify(canonical(event));
}

function canonical(v: unknown): unknown {
  if (typeof v === "bigint") return `0x${v.toString(16)}`;
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = canonical(x);
    }
    return out;
  }
  return v;
}

/** An event's kind ("set-xsave", "init", …): its `kind` field, or its key for events without one. */
export const eventKind = (event: unknown): string =>
  typeof event === "object" && event !== null && "kind" in event ? String(event.kind) : eventKey(event);
