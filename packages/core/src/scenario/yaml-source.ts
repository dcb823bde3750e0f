/**
 * A YAML (or JSON — YAML is a superset) document with positions: every validation error of a design
 * or scenario file points at file:line:column of the offending key or value (yaml's LineCounter).
 */
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, type Document, type Node } from "yaml";
import { ScenarioError } from "../errors.js";

export type YamlPath = readonly (string | number)[];

export class YamlSource {
  readonly doc: Document.Parsed;
  readonly data: unknown;
  private readonly lc = new LineCounter();

  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lc, prettyErrors: false });
    const err = this.doc.errors[0];
    if (err) {
      const p = this.lc.linePos(err.pos[0]);
      throw new ScenarioError(`YAML syntax: ${err.message.split("\n")[0]}`, { file, line: p.line, column: p.col });
    }
    this.data = this.doc.toJS({ maxAliasCount: 100 });
  }

  /** The location of the value at `path` (or of its key, with `key`), falling back to the nearest ancestor. */
  where(path: YamlPath, key = false): { file: string; line: number; column: number } {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      const node = key && n === path.length && n > 0 ? this.keyNode(sub) : (this.doc.getIn(sub, true) as Node | undefined);
      const range = node && "range" in node ? node.range : undefined;
      if (range) {
        const p = this.lc.linePos(range[0]);
        return { file: this.file, line: p.line, column: p.col };
      }
    }
    return { file: this.file, line: 1, column: 1 };
  }

  private keyNode(path: YamlPath): Node | undefined {
    const parent = this.doc.getIn(path.slice(0, -1), true) as Node | undefined;
    const last = path[path.length - 1];
    if (parent && isMap(parent)) {
      for (const item of parent.items) {
        if (isPair(item) && isScalar(item.key) && item.key.value === last) return item.key as Node;
      }
    }
    if (parent && isSeq(parent) && typeof last === "number") return parent.items[last] as Node | undefined;
    return undefined;
  }

  fail(message: string, path: YamlPath, key = false): never {
    throw new ScenarioError(message, this.where(path, key));
  }
}

/** Checks that `obj` (at `path`) is a mapping with only `allowed` keys; returns it typed loosely. */
export function expectMap(src: YamlSource, obj: unknown, path: YamlPath, allowed: readonly string[], what: string): Record<string, unknown> {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) src.fail(`${what} must be a mapping`, path);
  for (const k of Object.keys(obj as object)) {
    if (!allowed.includes(k)) src.fail(`unknown key "${k}" in ${what} (allowed: ${allowed.join(", ")})`, [...path, k], true);
  }
  return obj as Record<string, unknown>;
}

export function expectString(src: YamlSource, v: unknown, path: YamlPath, what: string): string {
  if (typeof v !== "string" || v.length === 0) src.fail(`${what} must be a non-empty string`, path);
  return v;
}
