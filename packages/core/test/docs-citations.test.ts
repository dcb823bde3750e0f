import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ASSUMPTIONS } from "../src/model-options.js";

/**
 * The project's own documents are the only sources shipped files may cite: `docs/facts.md#anchor`
 * (and other `docs/*.md#anchor`) must resolve, and nothing a user sees may point at a file outside
 * the repository. Failures list every offending file and line.
 */

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const FACTS = join(ROOT, "docs", "facts.md");
const TEXT_FILE = /\.(?:[cm]?[jt]sx?|md|ya?ml|json|txt|html|css)$/;
const SKIP_DIR = new Set(["node_modules", "dist", ".turbo", ".vitest", "coverage"]);

function walk(path: string, out: string[]): void {
  if (!existsSync(path)) return;
  const st = statSync(path);
  if (st.isFile()) {
    if (TEXT_FILE.test(path)) out.push(path);
    return;
  }
  for (const name of readdirSync(path).sort()) {
    if (!SKIP_DIR.has(name)) walk(join(path, name), out);
  }
}

/** What the project ships or shows a user: package sources, READMEs, manifests, docs, scenarios. */
function shippedFiles(): string[] {
  const out: string[] = [];
  for (const group of ["packages", "apps"]) {
    const base = join(ROOT, group);
    if (!existsSync(base)) continue;
    for (const pkg of readdirSync(base).sort()) {
      for (const part of ["src", "bin", "README.md", "package.json"]) walk(join(base, pkg, part), out);
    }
  }
  for (const top of ["README.md", "docs", "scenarios"]) walk(join(ROOT, top), out);
  return out;
}

/** GitHub's heading slug: lower case, inline HTML and punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading
    .replace(/<[^>]*>/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** Anchors a Markdown file defines: explicit `<a id>`/`<a name>` and heading slugs. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  for (const m of text.matchAll(/^#{1,6}\s+(.+)$/gm)) anchors.add(slug(m[1]!));
  return anchors;
}

interface Citation {
  readonly where: string;
  readonly target: string;
  readonly anchor: string;
}

const rel = (p: string): string => relative(ROOT, p).split("\\").join("/");

/** `docs/<file>.md#anchor` anywhere; inside docs/ also relative links `](file.md#a)` and `](#a)`. */
function citationsIn(file: string, text: string): Citation[] {
  const out: Citation[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    const where = `${rel(file)}:${i + 1}`;
    for (const m of line.matchAll(/docs\/([A-Za-z0-9_.-]+\.md)#([A-Za-z0-9_-]+)/g)) {
      out.push({ where, target: join(ROOT, "docs", m[1]!), anchor: m[2]! });
    }
    if (rel(dirname(file)) === "docs") {
      for (const m of line.matchAll(/\]\((?:\.\/)?([A-Za-z0-9_.-]+\.md)?#([A-Za-z0-9_-]+)\)/g)) {
        out.push({ where, target: m[1] ? resolve(dirname(file), m[1]) : file, anchor: m[2]! });
      }
    }
  });
  return out;
}

/** Mentions of documents that are not in the repository, and absolute build-machine paths. */
const OUTSIDE = [/\b(?:FACTS|DESIGN|STYLE|LAB)\.md\b/, /(?<![\w.-])\/work\//];

describe("docs/facts.md", () => {
  const facts = existsSync(FACTS) ? readFileSync(FACTS, "utf8") : "";
  const ids = [...facts.matchAll(/<a\s+id="([^"]+)"/g)].map((m) => m[1]!);

  it("exists, with explicit kebab-case anchors, none defined twice", () => {
    expect(facts.length, "docs/facts.md is missing or empty").toBeGreaterThan(0);
    expect(ids.length).toBeGreaterThan(40);
    const bad = ids.filter((id) => !/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(id));
    expect(bad, "anchors that are not kebab-case").toEqual([]);
    const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
    expect(twice, "anchors defined more than once").toEqual([]);
  });

  it("gives every fact row a certainty tag, and names the model assumption of every uncertain one", () => {
    const names = Object.keys(ASSUMPTIONS);
    const problems: string[] = [];
    let header: string[] | undefined;
    let rows = 0;
    facts.split("\n").forEach((line, i) => {
      if (!line.startsWith("|")) {
        header = undefined;
        return;
      }
      const cells = line.split("|").slice(1, -1).map((c) => c.trim());
      if (header === undefined) {
        header = cells;
        return;
      }
      if (cells.every((c) => /^:?-+:?$/.test(c))) return;
      const tagAt = header.indexOf("tag");
      if (tagAt < 0) return;
      rows++;
      const tag = cells[tagAt] ?? "";
      if (!/^(?:verified|secondary|uncertain)\b/.test(tag)) problems.push(`docs/facts.md:${i + 1}: no tag ("${tag}")`);
      if (/\buncertain\b/.test(tag) && !names.some((n) => line.includes(`\`${n}\``))) {
        problems.push(`docs/facts.md:${i + 1}: uncertain, but names no ASSUMPTIONS entry`);
      }
    });
    expect(rows).toBeGreaterThan(100);
    expect(problems.join("\n")).toBe("");
  });

  it("lists every ASSUMPTIONS entry in its #assumptions table, and no other", () => {
    const start = facts.indexOf('<a id="assumptions">');
    expect(start).toBeGreaterThanOrEqual(0);
    const section = facts.slice(start, facts.indexOf("\n## ", start + 1));
    const listed = [...section.matchAll(/^\| `([A-Za-z0-9]+)` \|/gm)].map((m) => m[1]!);
    expect([...listed].sort()).toEqual(Object.keys(ASSUMPTIONS).sort());
  });
});

describe("citations in shipped files", () => {
  const files = shippedFiles();
  const texts = new Map(files.map((f) => [f, readFileSync(f, "utf8")] as const));

  it("scans the shipped files", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.some((f) => rel(f) === "docs/facts.md")).toBe(true);
  });

  it("cite only anchors that exist", () => {
    const anchorCache = new Map<string, Set<string> | undefined>();
    const anchors = (target: string): Set<string> | undefined => {
      if (!anchorCache.has(target)) {
        anchorCache.set(target, existsSync(target) ? anchorsOf(readFileSync(target, "utf8")) : undefined);
      }
      return anchorCache.get(target);
    };
    const all: Citation[] = [];
    for (const [file, text] of texts) all.push(...citationsIn(file, text));
    expect(all.length, "no docs/*.md#anchor citation found at all").toBeGreaterThan(0);
    const broken = all
      .filter((c) => !anchors(c.target)?.has(c.anchor))
      .map((c) => `${c.where}: ${rel(c.target)}#${c.anchor} (${anchors(c.target) ? "no such anchor" : "no such file"})`);
    expect(broken.join("\n"), `${broken.length} citation(s) of missing anchors`).toBe("");
  });

  it("never cite documents outside the repository (FACTS.md, DESIGN.md, STYLE.md, LAB.md) or /work/ paths", () => {
    const offenders: string[] = [];
    for (const [file, text] of texts) {
      text.split("\n").forEach((line, i) => {
        if (OUTSIDE.some((re) => re.test(line))) offenders.push(`${rel(file)}:${i + 1}: ${line.trim().slice(0, 140)}`);
      });
    }
    expect(offenders.join("\n"), `${offenders.length} line(s) cite files a user cannot open`).toBe("");
  });
});
