import koffi from "koffi";
import { describe, expect, it } from "vitest";
import { ERRNO, errnoName } from "../src/errno.js";

describe("errno table", () => {
  it("agrees with koffi's view of this platform's errno.h", () => {
    for (const [name, n] of Object.entries(ERRNO)) {
      const k = (koffi.os.errno as Record<string, number>)[name];
      if (k !== undefined) expect(n, name).toBe(k);
    }
  });
  it("names numbers and falls back for unknown ones", () => {
    expect(errnoName(22)).toBe("EINVAL");
    expect(errnoName(2)).toBe("ENOENT");
    expect(errnoName(9999)).toBe("errno 9999");
  });
});
