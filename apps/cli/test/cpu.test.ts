import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

describe("kvmx cpu", () => {
  it("profiles --json lists spr, kvm-pvm, dmr and zen with XCR0 as 0x strings", async () => {
    const io = captureIo();
    expect(await main(["cpu", "profiles", "--json"], io)).toBe(0);
    const j = JSON.parse(io.stdout());
    expect(j.schemaVersion).toBe(1);
    expect(j.profiles.map((p: { name: string; supportedXcr0: string; hasApx: boolean }) => [p.name, p.supportedXcr0, p.hasApx])).toEqual([
      ["spr", "0x602e7", false],
      ["kvm-pvm", "0xe7", false],
      ["dmr", "0xe02e7", true],
      ["zen", "0x2e7", false],
    ]);
  });
  it("profiles prints a table for people", async () => {
    const io = captureIo();
    expect(await main(["cpu", "profiles"], io)).toBe(0);
    expect(io.stdout()).toMatch(/dmr\s*│\s*intel\s*│\s*yes\s*│\s*0xe02e7/);
    // The descriptions wrap: the table fits 100 columns.
    expect(Math.max(...io.stdout().split("\n").map((l) => [...l].length))).toBeLessThanOrEqual(100);
  });
  it("instructions shows the table with example encodings", async () => {
    const io = captureIo();
    expect(await main(["cpu", "instructions", "--json"], io)).toBe(0);
    const rows = JSON.parse(io.stdout()).instructions as { op: string; bytes: string }[];
    expect(rows.find((r) => r.op === "mov-r64-r64")?.bytes).toBe("d54889c0");
    // 19 instructions of the APX model, and RDPKRU/WRPKRU, MOV CR3/DR6 (both ways) and TILELOADD of the model features.
    expect(rows).toHaveLength(26);
    expect(rows.find((r) => r.op === "tileloadd")?.bytes).toBe("c4e27b4b0cc8");
  });
});
