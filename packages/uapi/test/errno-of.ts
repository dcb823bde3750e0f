import { KvmError } from "../src/errors.js";

/** "ok" when `f` returns, else the KvmError's errno name (anything else is rethrown). */
export function errnoOf(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    if (e instanceof KvmError) return e.errnoName;
    throw e;
  }
}
