import { afterAll, bench, describe } from "vitest";
import {
  KVM_XSAVE_SIZE,
  cpuProfile,
  decodeXsave,
  initXsaveImage,
  type CpuProfile,
  type XsaveImage,
} from "../src/index.js";

/**
 * Speed goal: XSAVE image decode+encode throughput against a plain Buffer copy of the same bytes
 * (goal: codec ≥ 0.25× copy speed). Two images: the 4096-byte KVM_GET_XSAVE size on spr, and dmr's full
 * standard size (11008 bytes, AMX and APX included). "decode+encode" is the codec as callers use it
 * (lazy: fields are read on demand); "decode+read+encode" also reads every typed field and R16–R31.
 */
const spr = cpuProfile("spr");
const dmr = cpuProfile("dmr");

function sample(profile: CpuProfile, size: number): Uint8Array {
  const img = initXsaveImage(profile, { size });
  img.xstateBv = profile.supportedXcr0;
  for (let i = 576; i < img.size; i++) img.bytes[i] = (i * 7) & 0xff;
  img.xstateBv = profile.supportedXcr0;
  img.xcompBv = 0n;
  return img.encode();
}

const images = {
  "spr 4096": { profile: spr, bytes: sample(spr, KVM_XSAVE_SIZE) },
  "dmr 11008": { profile: dmr, bytes: sample(dmr, dmr.maxStandardSize) },
};

let sink = 0;
const codec = (p: CpuProfile, b: Uint8Array) => {
  sink ^= decodeXsave(b, { profile: p }).encode().length;
};
const readAll = (img: XsaveImage) => {
  let acc = img.fcw ^ img.fsw ^ img.ftw ^ img.fop ^ img.mxcsr ^ img.mxcsrMask ^ Number(img.fip & 0xffn) ^ Number(img.fdp & 0xffn);
  acc ^= Number(img.xstateBv & 0xffn) ^ Number(img.xcompBv & 0xffn);
  for (let k = 0; k < 8; k++) acc ^= img.st(k)[0]!;
  for (let k = 0; k < 16; k++) acc ^= img.xmm(k)[0]!;
  for (const c of img.components()) acc ^= c.bytes[0]! ^ (c.present ? 1 : 0);
  for (const r of img.apxRegisters() ?? []) acc ^= Number(r & 0xffn);
  return acc;
};
const codecRead = (p: CpuProfile, b: Uint8Array) => {
  const img = decodeXsave(b, { profile: p });
  sink ^= readAll(img) ^ img.encode().length;
};
const copy = (b: Uint8Array) => {
  sink ^= Buffer.from(b).length;
};

for (const [name, { profile, bytes }] of Object.entries(images)) {
  describe(`XSAVE ${name}`, () => {
    bench("Buffer copy", () => copy(bytes));
    bench("decode+encode", () => codec(profile, bytes));
    bench("decode+read+encode", () => codecRead(profile, bytes));
  });
}

/** ns per call, median of 5 timed batches (the bench() tables above carry vitest's own statistics). */
function nsPerOp(fn: () => void, iterations = 20_000): number {
  for (let i = 0; i < 2_000; i++) fn();
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    runs.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  return runs.sort((a, b) => a - b)[2]!;
}

afterAll(() => {
  const lines = ["", "XSAVE codec vs Buffer copy (goal: codec ≥ 0.25× copy speed)"];
  for (const [name, { profile, bytes }] of Object.entries(images)) {
    const tCopy = nsPerOp(() => copy(bytes));
    const tCodec = nsPerOp(() => codec(profile, bytes));
    const tRead = nsPerOp(() => codecRead(profile, bytes));
    const mbps = (ns: number) => ((bytes.length / ns) * 1e9) / 2 ** 20;
    lines.push(
      `  ${name}: copy ${tCopy.toFixed(0)} ns (${mbps(tCopy).toFixed(0)} MiB/s); ` +
        `decode+encode ${tCodec.toFixed(0)} ns (${mbps(tCodec).toFixed(0)} MiB/s) → ratio ${(tCopy / tCodec).toFixed(2)} ` +
        `${tCopy / tCodec >= 0.25 ? "≥" : "<"} 0.25; decode+read+encode ${tRead.toFixed(0)} ns → ratio ${(tCopy / tRead).toFixed(2)}`,
    );
  }
  console.log(lines.join("\n") + (sink === -1 ? "" : ""));
});
