import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cpuProfile, decodeXsave, xsaveFromJson, xsaveToJson } from "../../src/index.js";
import { sprFixture } from "./spr-fixture-recipe.js";

const bytes = new Uint8Array(readFileSync(new URL("../../fixtures/spr-kvm-get-xsave.bin", import.meta.url)));

describe("fixtures/spr-kvm-get-xsave.bin (synthetic, see fixtures/README.md)", () => {
  it("is exactly what its recipe builds", () => {
    expect(bytes).toEqual(sprFixture().encode());
  });
  it("decodes as a 4096-byte standard image with XSTATE_BV 0xe7 and re-encodes byte-exact", () => {
    const img = decodeXsave(bytes, { profile: cpuProfile("kvm-pvm") });
    expect([img.format, img.size, img.xstateBv, img.xcompBv, img.fcw, img.mxcsr]).toEqual(["standard", 4096, 0xe7n, 0n, 0x37f, 0x1f80]);
    expect(img.components().map((c) => [c.name, c.present])).toEqual([
      ["FP", true], ["SSE", true], ["YMM", true], ["OPMASK", true], ["ZMM_Hi256", true], ["Hi16_ZMM", true],
    ]);
    expect(img.encode()).toEqual(bytes);
    expect(xsaveFromJson(xsaveToJson(img)).encode()).toEqual(bytes);
  });
  it("on an APX host profile the same bytes show component 19 absent with zero registers", () => {
    const img = decodeXsave(bytes, { profile: cpuProfile("dmr"), xcr0: 0x800e7n });
    expect(img.component(19)).toMatchObject({ offset: 960, present: false });
    expect(img.apxRegisters()).toEqual(new Array(16).fill(0n));
  });
});
