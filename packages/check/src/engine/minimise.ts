import type { Explorable, InvariantName } from "@kvmx/core";
import { replay } from "./replay.js";

/**
 * Delta debugging (Zeller's ddmin) over an event list: drops chunks of events, then single events,
 * while the same invariant still breaks when the rest is replayed from `start` (every event still
 * enabled where it is applied). The result is 1-minimal: removing any one event loses the violation.
 * Replays stop at the first violation, so the list is also cut right after it.
 */
export function minimiseEvents<S, E>(model: Explorable<S, E>, start: S, events: readonly E[], invariant: InvariantName, variant = 0): E[] {
  const breaks = (candidate: readonly E[]): E[] | undefined => {
    const r = replay(model, start, candidate, { invariant, trace: false, variant });
    return r.firstViolation ? candidate.slice(0, r.firstViolation.eventIndex + 1) : undefined;
  };
  let current = breaks(events);
  if (!current) return [...events];
  let n = 2;
  while (current.length >= 2) {
    const chunk = Math.ceil(current.length / n);
    let reduced = false;
    for (let i = 0; i < n; i++) {
      // Try the complement of chunk i.
      const candidate = [...current.slice(0, i * chunk), ...current.slice((i + 1) * chunk)];
      if (candidate.length === current.length) continue;
      const still = breaks(candidate);
      if (still) {
        current = still;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= current.length) break;
      n = Math.min(n * 2, current.length);
    }
  }
  return current;
}
