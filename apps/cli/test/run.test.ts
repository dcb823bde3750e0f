import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

const scen = (f: string) => fileURLToPath(new URL(`../../../scenarios/${f}`, import.meta.url));

describe("kvmx run", () => {
  test("prints every site with live XCR0 and R16–R31 owner; exit 0 when the expectation holds", async () => {
    const io = captureIo();
    const code = await main(["run", scen("first-enable-zeros.yaml")], io);
    const out = io.stdout();
    console.log(out.split("\n").slice(0, 60).join("\n"));
    expect(code).toBe(0);
    expect(out).toMatch(/vmx:asm-before-vmenter\s+asm\s+XCR0 0xe02e7\s+R16-R31 init/);
    expect(out).toContain("expectation holds");
  });
});
