import { describe, expect, it } from "vitest";
import { InputError, ScenarioError, formatLocation } from "../src/errors.js";

describe("typed errors", () => {
  it("prefix the message with file:line:column", () => {
    const e = new ScenarioError("unknown event 'xsetbvv'", { file: "a.yaml", line: 3, column: 7 });
    expect(e.message).toBe("a.yaml:3:7: unknown event 'xsetbvv'");
    expect(e.category).toBe("bad-input");
    expect(e).toBeInstanceOf(InputError);
    expect(e.name).toBe("ScenarioError");
  });
  it("format a location without line as the file alone", () => {
    expect(formatLocation({ file: "-" })).toBe("-");
    expect(formatLocation({ file: "x", line: 2 })).toBe("x:2");
  });
});
