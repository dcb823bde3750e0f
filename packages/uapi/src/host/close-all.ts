/**
 * Runs every release step even if some fail (so one bad close never strands the other fds and
 * mappings), then rethrows the first failure; any later failures ride along on it as `others`.
 */
export function closeAll(steps: readonly (() => void)[]): void {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      step();
    } catch (err) {
      errors.push(err);
    }
  }
  const [first, ...others] = errors;
  if (errors.length === 0) return;
  if (others.length > 0 && first instanceof Error) Object.assign(first, { others });
  throw first;
}
