import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { LabError } from "./errors.js";
import { requireTool } from "./host-tools.js";

/**
 * A bzImage carries the kernel ELF compressed behind a small decompressor; under TCG that
 * decompression (and the BIOS that runs before it) costs seconds per boot. QEMU boots an
 * uncompressed vmlinux directly through its PVH entry point when the kernel has one (CONFIG_PVH), so
 * the lab unpacks the payload once per kernel. Boot protocol fields (Documentation/arch/x86/boot.rst):
 * setup_sects at 0x1f1, "HdrS" at 0x202, payload_offset/payload_length at 0x248/0x24c; the payload
 * ends with its uncompressed size (4 bytes) after the compressed stream.
 */
export type PayloadFormat = "gzip" | "xz" | "zstd" | "other";

export interface BzImagePayload {
  readonly format: PayloadFormat;
  readonly data: Buffer;
  readonly uncompressedSize: number;
}

export function bzImagePayload(image: Buffer): BzImagePayload | undefined {
  if (image.length < 0x250 || image.toString("latin1", 0x202, 0x206) !== "HdrS" || image.readUInt16LE(0x206) < 0x208) return undefined;
  const setupSects = image[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  if (start + length > image.length || length < 8) return undefined;
  const data = image.subarray(start, start + length);
  const magic = data.readUInt32BE(0);
  const format: PayloadFormat =
    magic >>> 16 === 0x1f8b ? "gzip" : magic === 0xfd377a58 ? "xz" : magic === 0x28b52ffd ? "zstd" : "other";
  return { format, data, uncompressedSize: data.readUInt32LE(length - 4) };
}

/** True when `elf` is an x86-64 ELF with a Xen PHYS32_ENTRY note (type 18): QEMU can PVH-boot it. */
export function hasPvhEntry(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > elf.length || elf.readUInt32LE(ph) !== 4 /* PT_NOTE */) continue;
    let at = Number(elf.readBigUInt64LE(ph + 8));
    const end = at + Number(elf.readBigUInt64LE(ph + 32));
    while (at + 12 <= end && end <= elf.length) {
      const namesz = elf.readUInt32LE(at);
      const descsz = elf.readUInt32LE(at + 4);
      const type = elf.readUInt32LE(at + 8);
      const name = elf.toString("latin1", at + 12, at + 12 + Math.max(0, namesz - 1));
      if (name === "Xen" && type === 18) return true;
      at += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

function decompressTo(p: BzImagePayload, out: string): void {
  if (p.format === "gzip") {
    // gzip's own trailer is the size word, so the whole payload is the stream
    writeFileSync(out, gunzipSync(p.data));
    return;
  }
  const tool = requireTool(p.format === "xz" ? "xz" : "zstd");
  const fd = openSync(out, "w");
  try {
    // without the trailing size word the stream is exactly what the tool expects
    const r = spawnSync(tool, ["-dc"], { input: p.data.subarray(0, p.data.length - 4), stdio: ["pipe", fd, "pipe"], maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new LabError(`${tool} could not unpack the kernel: ${String(r.stderr ?? r.error?.message).trim()}`, undefined, "internal");
  } finally {
    closeSync(fd);
  }
}

/**
 * Unpacks `bzImage` into `out` when it can be PVH-booted; returns `out`, or undefined when the
 * kernel must boot as a bzImage (unknown compression, no PVH note).
 */
export function extractPvhKernel(bzImage: string, out: string): string | undefined {
  const payload = bzImagePayload(readFileSync(bzImage));
  if (!payload || payload.format === "other") return undefined;
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    decompressTo(payload, tmp);
    const elf = readFileSync(tmp);
    if (elf.length !== payload.uncompressedSize || !hasPvhEntry(elf)) return undefined;
    renameSync(tmp, out);
    return out;
  } finally {
    rmSync(tmp, { force: true });
  }
}
