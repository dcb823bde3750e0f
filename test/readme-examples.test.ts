/**
 * Every ```ts block of every package README runs, so the examples a user copies cannot rot. A block is
 * a module of its own (it imports what it uses; `assert` lines state the results it shows); it is
 * written under .vitest/readme-examples and imported, packages resolving to their sources as in every
 * other test. A failure names the README, the block's line and what went wrong.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const outDir = join(root, ".vitest", "readme-examples");

/**
 * READMEs whose blocks are known not to run yet, with the reason. Their blocks must fail (`it.fails`),
 * so the day they run, this test says so and the entry goes.
 */
const PENDING: Record<string, string> = {};

/**
 * Blocks that boot the QEMU lab (15–45 s under TCG on 2 cores, on top of the lab's own boot tests) run
 * when KVMX_README_LAB=1 and the lab is set up; otherwise they are skipped, saying so.
 */
const { labUnavailableReason } = await import("@kvmx/lab");
const labReason = process.env.KVMX_README_LAB !== "1" ? "it boots the QEMU lab; KVMX_README_LAB=1 runs it" : labUnavailableReason();

const readmes = [
  ...readdirSync(join(root, "packages")).map((p) => join(root, "packages", p, "README.md")),
  join(root, "apps", "cli", "README.md"),
].filter((f) => existsSync(f));

/** The ```ts blocks of a Markdown file, with the line each starts on (1-based, the fence line). */
function tsBlocks(markdown: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```ts") continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i]!.trim() !== "```"; i++) body.push(lines[i]!);
    blocks.push({ line: start + 1, code: body.join("\n") });
  }
  return blocks;
}

describe("README examples", () => {
  it("finds the package READMEs and their examples", () => {
    expect(readmes.map((f) => relative(root, f))).toEqual(expect.arrayContaining(["packages/core/README.md", "packages/uapi/README.md"]));
    expect(tsBlocks(readFileSync(join(root, "packages/core/README.md"), "utf8")).length).toBeGreaterThan(2);
    expect(tsBlocks("a\n```ts\nconst x = 1;\n```\n```sh\nls\n```\n")).toEqual([{ line: 2, code: "const x = 1;" }]);
  });

  for (const readme of readmes) {
    const name = relative(root, readme);
    for (const block of tsBlocks(readFileSync(readme, "utf8"))) {
      const needsLab = block.code.includes('"@kvmx/lab"') && labReason !== undefined;
      if (needsLab) console.warn(`${name}:${block.line} skipped: ${labReason}`);
      const pending = PENDING[name];
      const test = needsLab ? it.skip : pending ? it.fails : it;
      test(`${name}:${block.line} ${pending ? `fails for now (${pending})` : "runs"}`, async () => {
        mkdirSync(outDir, { recursive: true });
        const file = join(outDir, `${name.replaceAll("/", "_")}-L${block.line}.ts`);
        writeFileSync(file, `// ${name}, the block at line ${block.line}\n${block.code}\n`);
        try {
          await import(pathToFileURL(file).href);
        } catch (err) {
          throw new Error(`${name}:${block.line}: the example fails: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
      });
    }
  }
});
