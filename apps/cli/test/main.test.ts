import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

describe("kvmx main", () => {
  it("exits 2 on an unknown command", async () => {
    const io = captureIo();
    expect(await main(["no-such-command"], io)).toBe(2);
    expect(io.stderr()).toMatch(/^error: /);
  });
  it("prints help and exits 0", async () => {
    const io = captureIo();
    expect(await main(["--help"], io)).toBe(0);
    expect(io.stdout()).toContain("Usage: kvmx");
  });
});
