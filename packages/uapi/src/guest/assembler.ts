import { encode, formatInstruction, type Instruction } from "@kvmx/core";
import { UapiEncodeError } from "../errors.js";

/**
 * A small x86-64 assembler for guest programs: instructions of the core table go through core's
 * `encode` (so the model and the real CPU run the same bytes); the few it lacks (MOV AL, jumps, DEC,
 * UD2, IRETQ ...) are raw bytes written here. Every emitted item is kept in `listing` so tests can
 * decode the output item by item.
 */
export interface ListingItem {
  /** offset from the program's load address */
  readonly offset: number;
  readonly bytes: Uint8Array;
  /** the core instruction, when the bytes came from core's encoder */
  readonly insn?: Instruction;
  /** assembler text */
  readonly text: string;
}

interface Fixup {
  at: number;
  label: string;
  /** offset the rel32/rel8 is relative to (end of the instruction) */
  end: number;
  width: 1 | 4;
}

export class Assembler {
  readonly #bytes: number[] = [];
  readonly #listing: ListingItem[] = [];
  readonly #labels = new Map<string, number>();
  readonly #fixups: Fixup[] = [];

  constructor(readonly origin: bigint) {}

  get offset(): number {
    return this.#bytes.length;
  }

  /** The guest-physical (= identity-mapped virtual) address of the next byte. */
  get here(): bigint {
    return this.origin + BigInt(this.#bytes.length);
  }

  #push(bytes: Uint8Array | readonly number[], text: string, insn?: Instruction): this {
    const b = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
    this.#listing.push(insn ? { offset: this.offset, bytes: b, insn, text } : { offset: this.offset, bytes: b, text });
    for (const x of b) this.#bytes.push(x);
    return this;
  }

  /** An instruction from the core table. */
  insn(i: Instruction): this {
    return this.#push(encode(i), formatInstruction(i), i);
  }

  /** Bytes the core table does not know, with the text they stand for. */
  raw(bytes: readonly number[], text: string): this {
    for (const b of bytes) {
      if (!Number.isInteger(b) || b < 0 || b > 0xff) throw new UapiEncodeError("guest program", `raw byte ${b} in "${text}"`);
    }
    return this.#push(bytes, text);
  }

  label(name: string): this {
    if (this.#labels.has(name)) throw new UapiEncodeError("guest program", `label ${name} defined twice`);
    this.#labels.set(name, this.offset);
    return this;
  }

  /** mov al, imm8 (B0 ib) */
  movAl(imm: number): this {
    return this.raw([0xb0, imm8(imm)], `mov al, 0x${imm.toString(16)}`);
  }

  /** dec r64 (REX.W FF /1), legacy registers only */
  dec(reg: number): this {
    legacyReg(reg);
    return this.raw([0x48 | (reg >> 3), 0xff, 0xc8 | (reg & 7)], `dec r${reg}`);
  }

  /** jnz label (0F 85 rel32) */
  jnz(label: string): this {
    return this.#jump([0x0f, 0x85], label, "jnz");
  }

  /** jmp label (E9 rel32) */
  jmp(label: string): this {
    return this.#jump([0xe9], label, "jmp");
  }

  #jump(opcode: number[], label: string, text: string): this {
    const at = this.offset + opcode.length;
    this.#fixups.push({ at, label, end: at + 4, width: 4 });
    return this.raw([...opcode, 0, 0, 0, 0], `${text} ${label}`);
  }

  /** ud2 (0F 0B): raises #UD on purpose */
  ud2(): this {
    return this.raw([0x0f, 0x0b], "ud2");
  }

  /** The program bytes with every jump resolved. */
  assemble(): Uint8Array {
    const out = Uint8Array.from(this.#bytes);
    const dv = new DataView(out.buffer);
    for (const f of this.#fixups) {
      const target = this.#labels.get(f.label);
      if (target === undefined) throw new UapiEncodeError("guest program", `undefined label ${f.label}`);
      dv.setInt32(f.at, target - f.end, true);
    }
    return out;
  }

  /** What was emitted, item by item (jump displacements as assembled). */
  get listing(): readonly ListingItem[] {
    const bytes = this.assemble();
    return this.#listing.map((it) => ({ ...it, bytes: bytes.slice(it.offset, it.offset + it.bytes.byteLength) }));
  }
}

function imm8(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new UapiEncodeError("guest program", `imm8 ${v} out of range`);
  return v;
}

function legacyReg(r: number): void {
  if (!Number.isInteger(r) || r < 0 || r > 15) throw new UapiEncodeError("guest program", `register ${r} is not one of the 16 legacy GPRs`);
}
