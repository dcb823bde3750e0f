import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { bzImagePayload, extractPvhKernel, hasPvhEntry } from "../src/kernel-image.js";
import { bzImageVersion } from "../src/kernel-source.js";

/** A minimal x86-64 ELF with one PT_NOTE segment holding one note (name, type). */
function elfWithNote(name: string, type: number): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const namesz = nameBytes.length;
  const note = Buffer.alloc(12 + Math.ceil(namesz / 4) * 4 + 8);
  note.writeUInt32LE(namesz, 0);
  note.writeUInt32LE(8, 4);
  note.writeUInt32LE(type, 8);
  nameBytes.copy(note, 12);
  const elf = Buffer.alloc(64 + 56 + note.length);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2; // ELFCLASS64
  elf[5] = 1;
  elf.writeBigUInt64LE(64n, 32); // e_phoff
  elf.writeUInt16LE(56, 54); // e_phentsize
  elf.writeUInt16LE(1, 56); // e_phnum
  elf.writeUInt32LE(4, 64); // PT_NOTE
  elf.writeBigUInt64LE(BigInt(64 + 56), 64 + 8); // p_offset
  elf.writeBigUInt64LE(BigInt(note.length), 64 + 32); // p_filesz
  note.copy(elf, 64 + 56);
  return elf;
}

/** A bzImage-shaped file: boot sector with the setup header, one setup sector, then the payload. */
function bzImage(payload: Buffer, version = "6.99.1-test (builder@host) #1 SMP"): Buffer {
  const setupSects = 1;
  const img = Buffer.alloc((setupSects + 1) * 512 + payload.length + 64);
  img[0x1f1] = setupSects;
  img.write("HdrS", 0x202, "latin1");
  img.writeUInt16LE(0x20f, 0x206); // boot protocol 2.15
  img.writeUInt16LE(0x300 - 0x200, 0x20e); // kernel_version string at 0x300
  img.write(`${version}\0`, 0x300, "latin1");
  img.writeUInt32LE(0, 0x248); // payload_offset from the protected-mode start
  img.writeUInt32LE(payload.length, 0x24c);
  payload.copy(img, (setupSects + 1) * 512);
  return img;
}

const dir = mkdtempSync(join(tmpdir(), "kvmx-lab-image-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("bzImage → PVH vmlinux", () => {
  it("reads the version string, the payload's format and its size word", () => {
    const elf = elfWithNote("Xen", 18);
    const img = bzImage(gzipSync(elf));
    expect(bzImageVersion(img)).toBe("6.99.1-test");
    const p = bzImagePayload(img)!;
    expect(p.format).toBe("gzip");
    expect(p.uncompressedSize).toBe(elf.length);
    expect(bzImagePayload(Buffer.alloc(4096))).toBeUndefined();
  });

  it("a PVH note is the Xen note of type 18; other notes are not", () => {
    expect(hasPvhEntry(elfWithNote("Xen", 18))).toBe(true);
    expect(hasPvhEntry(elfWithNote("Xen", 17))).toBe(false);
    expect(hasPvhEntry(elfWithNote("GNU", 18))).toBe(false);
    expect(hasPvhEntry(Buffer.from("not an elf"))).toBe(false);
  });

  it("unpacks a PVH kernel byte for byte, and refuses one without the note", () => {
    const elf = elfWithNote("Xen", 18);
    writeFileSync(join(dir, "pvh"), bzImage(gzipSync(elf)));
    expect(extractPvhKernel(join(dir, "pvh"), join(dir, "pvh.elf"))).toBe(join(dir, "pvh.elf"));
    expect(readFileSync(join(dir, "pvh.elf")).equals(elf)).toBe(true);
    writeFileSync(join(dir, "plain"), bzImage(gzipSync(elfWithNote("Xen", 5))));
    expect(extractPvhKernel(join(dir, "plain"), join(dir, "plain.elf"))).toBeUndefined();
  });
});
