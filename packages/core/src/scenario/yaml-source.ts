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
      const node = key && n === path.length && n > 0 ? this.keyNode(sub) : this.node(sub);
      const range = node && "range" in node ? node.range : undefined;
      if (range) {
        const p = this.lc.linePos(range[0]);
        return { file: this.file, line: p.line, column: p.col };
      }
    }
    return { file: this.file, line: 1, column: 1 };
  }

  /** The node at `path`; mapping keys match by their text (`960:` is found by "960" too). */
  private node(path: YamlPath): Node | undefined {
    let cur: unknown = this.doc.contents;
    for (const seg of path) {
      if (isMap(cur)) {
        const pair = cur.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
        cur = pair && isPair(pair) ? pair.value : undefined;
      } else if (isSeq(cur) && typeof seg === "number") cur = cur.items[seg];
      else return undefined;
    }
    return (cur ?? undefined) as Node | undefined;
  }

  private keyNode(path: YamlPath): Node | undefined {
    const parent = this.node(path.slice(0, -1));
    const last = path[path.length - 1];
    if (parent && isMap(parent)) {
      for (const item of parent.items) {
        if (isPair(item) && isScalar(item.key) && String(item.key.value) === String(last)) return item.key as Node;
      }
    }
    if (parent && isSeq(parent) && typeof last === "number") return parent.items[last] as Node | undefined;
    return undefined;
  }

  fail(message: string, path: YamlPath, key = false): never {
    throw new ScenarioError(message, this.where(path, key));
  }

  /**
   * The value at `path` as written: YAML reads `0x1111111111111111` as a number and loses its low
   * bits, so a numeric scalar is taken from its source text. Strings come back unchanged.
   */
  sourceText(path: YamlPath, value: unknown): unknown {
    if (typeof value !== "number") return value;
    const node = this.node(path);
    return node && isScalar(node) && typeof node.source === "string" ? node.source : value;
  }

  /** A u64 at `path` ("0x…", decimal, or an unquoted YAML number), exact; an error there otherwise. */
  u64(value: unknown, path: YamlPath, what: string): bigint {
    const v = this.sourceText(path, value);
    if (typeof v === "string" && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v.trim())) {
      const n = BigInt(v.trim());
      if (n >> 64n === 0n) return n;
    }
    return this.fail(`${what}: expected a u64 ("0x…" or decimal), got ${JSON.stringify(value)}`, path);
  }

  /** A u32 at `path`. */
  u32(value: unknown, path: YamlPath, what: string): number {
    const n = this.u64(value, path, what);
    if (n > 0xffff_ffffn) this.fail(`${what}: ${String(this.sourceText(path, value))} does not fit in 32 bits`, path);
    return Number(n);
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

/** Checks that `obj` (at `path`) is a mapping with keys of the caller's choosing. */
export function anyMap(src: YamlSource, obj: unknown, path: YamlPath, what: string): Record<string, unknown> {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) src.fail(`${what} must be a mapping`, path);
  return obj as Record<string, unknown>;
}

export function expectString(src: YamlSource, v: unknown, path: YamlPath, what: string): string {
  if (typeof v !== "string" || v.length === 0) src.fail(`${what} must be a non-empty string`, path);
  return v;
}
