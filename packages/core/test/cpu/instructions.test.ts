import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  DecodeError,
  EncodeError,
  INSTRUCTION_EXAMPLES,
  INSTRUCTION_OPS,
  INSTRUCTIONS,
  decode,
  encode,
  encodingForm,
  formatInstruction,
  insn,
  touchesEgpr,
  type Instruction,
} from "../../src/cpu/instructions.js";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
const bytes = (h: string) => Uint8Array.from(h.split(" ").map((x) => parseInt(x, 16)));

describe("the instruction table", () => {
  it("has an example for every op", () => {
    for (const op of INSTRUCTION_OPS) expect(INSTRUCTION_EXAMPLES[op].length, op).toBeGreaterThan(0);
  });
  for (const op of INSTRUCTION_OPS) {
    for (const ex of INSTRUCTION_EXAMPLES[op]) {
      it(`${formatInstruction(ex.insn)} encodes to ${ex.bytes} (${ex.source})`, () => {
        expect(hex(encode(ex.insn))).toBe(ex.bytes);
        const d = decode(bytes(ex.bytes), 0, "long64");
        expect(d.insn).toEqual(ex.insn);
        expect(d.length).toBe(bytes(ex.bytes).length);
      });
    }
  }
});

import { arbInstruction } from "./arbitraries.js";

describe("encode/decode", () => {
  test.prop([arbInstruction])("decode(encode(i)) = i in 64-bit mode", (i) => {
    const b = encode(i);
    const d = decode(b, 0, "long64");
    expect(d.insn).toEqual(i);
    expect(d.length).toBe(b.length);
  });

  test.prop([arbInstruction, fc.uint8Array({ maxLength: 8 })])("decodes at an offset and ignores trailing bytes", (i, junk) => {
    const b = encode(i);
    const buf = new Uint8Array(3 + b.length + junk.length);
    buf.set(b, 3);
    buf.set(junk, 3 + b.length);
    expect(decode(buf, 3, "long64")).toEqual({ insn: i, length: b.length });
  });

  test.prop([arbInstruction])("every proper prefix of an encoding is truncated", (i) => {
    const b = encode(i);
    for (let n = 1; n < b.length; n++) {
      try {
        decode(b.subarray(0, n), 0, "long64");
        expect.unreachable(`prefix of length ${n} decoded`);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        expect((e as DecodeError).failure).toBe("truncated");
      }
    }
  });

  test.prop([arbInstruction])("naming R16–R31 always selects an APX encoding (REX2 0xD5 or EVEX 0x62)", (i) => {
    const b = encode(i);
    if (touchesEgpr(i)) {
      expect([0xd5, 0x62]).toContain(b[0]);
      expect(["rex2", "evex-apx"]).toContain(encodingForm(i));
    }
  });

  it("REX followed by REX2 is invalid (#UD)", () => {
    expect(() => decode(bytes("48 d5 48 89 c0"))).toThrow(expect.objectContaining({ failure: "invalid" }));
  });
  it("REX2/EVEX/REX bytes are not the subset outside 64-bit mode, but XSETBV is", () => {
    expect(() => decode(bytes("d5 48 89 c0"), 0, "protected")).toThrow(expect.objectContaining({ failure: "unsupported" }));
    expect(() => decode(bytes("48 89 c3"), 0, "compat")).toThrow(DecodeError);
    expect(decode(bytes("0f 01 d1"), 0, "real")).toEqual({ insn: { op: "xsetbv" }, length: 3 });
    expect(() => decode(bytes("0f ae 27"), 0, "real")).toThrow(expect.objectContaining({ failure: "unsupported" }));
  });
  it("rejects PUSH2 with ND=0, and unknown opcodes, with typed errors", () => {
    expect(() => decode(bytes("62 f4 44 08 ff f0"))).toThrow(expect.objectContaining({ failure: "invalid" }));
    expect(() => decode(bytes("90"))).toThrow(expect.objectContaining({ failure: "unsupported" }));
    expect(() => decode(new Uint8Array(0))).toThrow(expect.objectContaining({ failure: "truncated" }));
  });
  it("constructors reject out-of-range operands with EncodeError", () => {
    expect(() => insn.mov(32, 0)).toThrow(EncodeError);
    expect(() => insn.load(0, { base: 0, disp: 2 ** 31 })).toThrow(EncodeError);
    expect(() => insn.outImm8(256)).toThrow(EncodeError);
    expect(() => insn.rdmsrImm(0, -1)).toThrow(EncodeError);
  });
  it("touchesEgpr sees registers, memory bases and PUSH2/POP2 operands", () => {
    expect(touchesEgpr(insn.mov(0, 1))).toBe(false);
    expect(touchesEgpr(insn.mov(0, 1, true))).toBe(false);
    expect(touchesEgpr(insn.load(0, { base: 20, disp: 0 }))).toBe(true);
    expect(touchesEgpr(insn.push2(3, 31))).toBe(true);
    expect(touchesEgpr(insn.wrmsrnsImm(0x6e0, 17))).toBe(true);
    expect(touchesEgpr(insn.xsetbv())).toBe(false);
  });
  it("table marks privileged and 64-bit-only ops", () => {
    expect(INSTRUCTIONS.xsetbv.cpl0).toBe(true);
    expect(INSTRUCTIONS.xgetbv.cpl0).toBe(false);
    expect(INSTRUCTIONS.push2.longModeOnly).toBe(true);
  });
});
