import { decode, insn } from "@kvmx/core";
import { describe, expect, it } from "vitest";
import { UapiEncodeError } from "../src/errors.js";
import { Assembler } from "../src/guest/assembler.js";
import { cpuidLoopProgram, faultProgram, movProgram, xsetbvProgram } from "../src/guest/guest-program.js";
import { LONG_MODE_LAYOUT } from "../src/guest/long-mode.js";

/** Every listing item from core's table decodes back to the instruction that produced it. */
function expectListingDecodes(a: Assembler) {
  const bytes = a.assemble();
  let covered = 0;
  for (const item of a.listing) {
    expect(item.offset).toBe(covered);
    covered += item.bytes.byteLength;
    expect(bytes.subarray(item.offset, item.offset + item.bytes.byteLength)).toEqual(item.bytes);
    if (item.insn) {
      const d = decode(bytes, item.offset);
      expect(d.insn).toEqual(item.insn);
      expect(d.length).toBe(item.bytes.byteLength);
    }
  }
  expect(covered).toBe(bytes.byteLength);
}

describe("Assembler", () => {
  it("encodes core instructions with core's encoder and keeps a decodable listing", () => {
    const a = new Assembler(0x10000n);
    a.insn(insn.movImm(0, 0xe7n)).insn(insn.movImm(2, 0n)).insn(insn.xsetbv()).insn(insn.mov(16, 0)).insn(insn.hlt());
    expectListingDecodes(a);
    expect(a.listing.map((i) => i.text)).toHaveLength(5);
    expect([...a.assemble().subarray(-5)]).toEqual([0xd5, 0x18, 0x89, 0xc0, 0xf4]); // docs/facts.md#rex2-encoding mov %rax,%r16; hlt
  });

  it("resolves backward and forward jumps to their labels", () => {
    const a = new Assembler(0n);
    a.label("top").dec(8).jnz("top").jmp("end").ud2().label("end").insn(insn.hlt());
    const b = a.assemble();
    const dv = new DataView(b.buffer);
    // dec r8 = 49 FF C8; jnz rel32 at 3..8 → back to 0
    expect([...b.subarray(0, 3)]).toEqual([0x49, 0xff, 0xc8]);
    expect(9 + dv.getInt32(5, true)).toBe(0);
    // jmp rel32 at 9..13 → "end" at 16, over the ud2
    expect(b[9]).toBe(0xe9);
    expect(14 + dv.getInt32(10, true)).toBe(16);
    expect([...b.subarray(14, 16)]).toEqual([0x0f, 0x0b]);
    expect(b[16]).toBe(0xf4);
  });

  it("rejects undefined or duplicate labels and out-of-range raw bytes", () => {
    expect(() => new Assembler(0n).jmp("nowhere").assemble()).toThrow(UapiEncodeError);
    expect(() => new Assembler(0n).label("x").label("x")).toThrow(UapiEncodeError);
    expect(() => new Assembler(0n).raw([256], "bad")).toThrow(UapiEncodeError);
    expect(() => new Assembler(0n).movAl(300)).toThrow(UapiEncodeError);
    expect(() => new Assembler(0n).dec(16)).toThrow(UapiEncodeError);
  });
});

describe("guest programs", () => {
  const program = (p: { chunks: readonly { gpa: bigint; bytes: Uint8Array }[] }) => p.chunks.find((c) => c.gpa === LONG_MODE_LAYOUT.entry)!.bytes;

  it("xsetbvProgram loads ECX=0, EAX/EDX from the value, then XSETBV", () => {
    const b = program(xsetbvProgram(0x800e7n));
    let at = 0;
    const seq = [];
    for (let i = 0; i < 4; i++) {
      const d = decode(b, at);
      seq.push(d.insn);
      at += d.length;
    }
    expect(seq).toEqual([insn.movImm(1, 0n), insn.movImm(0, 0x800e7n), insn.movImm(2, 0n), insn.xsetbv()]);
  });

  it("movProgram writes each register, APX ones with REX2", () => {
    const b = program(movProgram(new Map([[3, 5n], [17, 6n]])));
    const first = decode(b, 0);
    expect(first.insn).toEqual(insn.movImm(3, 5n));
    const second = decode(b, first.length);
    expect(second.insn).toEqual(insn.movImm(17, 6n));
    expect(b[first.length]).toBe(0xd5);
  });

  it("cpuidLoopProgram counts R8 down around CPUID", () => {
    const b = program(cpuidLoopProgram(1000n));
    expect(decode(b, 0).insn).toEqual(insn.movImm(8, 1000n));
    expect(Buffer.from(b).includes(Buffer.from([0x0f, 0xa2, 0x49, 0xff, 0xc8, 0x0f, 0x85]))).toBe(true);
  });

  it("faultProgram starts with UD2 or an EGPR MOV", () => {
    expect([...program(faultProgram("ud2")).subarray(0, 2)]).toEqual([0x0f, 0x0b]);
    expect(decode(program(faultProgram("egpr-mov")), 0).insn).toEqual(insn.movImm(16, 0x1234n));
  });
});
