import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

/**
 * The root README shows real output of kvmx. Every block that starts with one `$ kvmx …` line (and
 * the `kvmx run` excerpt, which names its scenario in the text before it) is run here, and each of its
 * lines must be a line of what the command prints now — `…` marks lines left out — so the README
 * cannot drift from the tool. Blocks that boot the QEMU lab or take minutes are left to the lab's own
 * tests and the bench (`kvmx lab …`, `kvmx diff --lab`, `kvmx check --backend vmx`).
 */
const root = fileURLToPath(new URL("../../../", import.meta.url));
const readme = readFileSync(`${root}README.md`, "utf8");

interface Excerpt {
  line: number;
  argv: string[];
  lines: string[];
}

function excerpts(): Excerpt[] {
  const out: Excerpt[] = [];
  const lines = readme.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith("```")) continue;
    const start = i;
    const bare = lines[i] === "```";                       // an output block (```sh, ```ts … are not)
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) body.push(lines[i]!);
    if (!bare || body.length === 0) continue;
    const commands = body.filter((l) => l.startsWith("$ "));
    if (commands.length === 1 && body[0]!.startsWith("$ kvmx ") && !/\blab\b|--lab/.test(body[0]!)) {
      out.push({ line: start + 1, argv: body[0]!.slice("$ kvmx ".length).split(/\s+/), lines: body.slice(1) });
    } else if (body[0]?.startsWith("scenario nmi-after-vmexit-mapxf:")) {
      out.push({ line: start + 1, argv: ["run", "scenarios/nmi-after-vmexit-mapxf.yaml"], lines: body });
    }
  }
  return out;
}

describe("README excerpts are what kvmx prints", () => {
  const found = excerpts();
  it("finds the excerpts (corpus, xsave layout, kvmx run)", () => {
    expect(found.map((e) => e.argv[0])).toEqual(expect.arrayContaining(["corpus", "xsave", "run"]));
  });
  for (const e of found) {
    it(`README.md:${e.line} kvmx ${e.argv.join(" ")}`, async () => {
      const io = { ...captureIo(), cwd: root };
      const capture = captureIo();
      const code = await main(e.argv, { ...io, out: capture.out, err: capture.err });
      expect(code, capture.stderr()).toBeLessThan(2);
      const printed = new Set(capture.stdout().split("\n").map((l) => l.trimEnd()));
      const missing = e.lines.filter((l) => l.trim() !== "" && l.trim() !== "…" && !printed.has(l.trimEnd()));
      expect(missing, `README.md:${e.line}: lines kvmx no longer prints`).toEqual([]);
    }, 120_000);
  }
});
