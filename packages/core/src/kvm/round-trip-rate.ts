import type { Explorable } from "./explorable.js";

/**
 * Simulated round trips per second: applies `event` to `state` over and over (each apply is one
 * KVM_RUN round trip on a copy of the state), after a warm-up, and returns the median of five runs.
 * The per-backend and per-design benches print this next to the real exit rates of docs/facts.md#real-exit-rates.
 */
export function roundTripsPerSecond<S, E>(model: Explorable<S, E>, state: S, event: E, iterations = 2_000): number {
  const once = () => void model.apply(state, event);
  for (let i = 0; i < 200; i++) once();
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) once();
    runs.push((iterations * 1e9) / Number(process.hrtime.bigint() - t0));
  }
  runs.sort((a, b) => a - b);
  return runs[2] ?? 0;
}
