import { expect } from "vitest";
import { ScenarioError } from "../../src/errors.js";

/** "file:line:col" of the first occurrence of `token` in `text` (1-based, as editors show it). */
export function at(file: string, text: string, token: string): string {
  const i = text.indexOf(token);
  if (i < 0) throw new Error(`token ${token} not in text`);
  const before = text.slice(0, i).split("\n");
  return `${file}:${before.length}:${before[before.length - 1]!.length + 1}`;
}

/** The message of the ScenarioError `f` throws (the test fails when it throws nothing or something else). */
export function scenarioErrorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as Error).message;
  }
  throw new Error("expected a ScenarioError");
}
