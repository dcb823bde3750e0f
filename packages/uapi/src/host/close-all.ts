/**
 * Runs every release step even if some fail, then rethrows the first failure (the others are
 * attached as its `cause` chain would hide them, so they ride along in an AggregateError).
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
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw errors[0] instanceof Error ? Object.assign(errors[0], { others: errors.slice(1) }) : errors[0];
}
