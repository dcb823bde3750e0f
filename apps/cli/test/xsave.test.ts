import { readFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

const FIXTURE = new URL("../../../packages/core/fixtures/spr-kvm-get-xsave.bin", import.meta.url);
const image = readFileSync(FIXTURE);

const run = async (args: string[], inputs: Record<string, Buffer | string> = {}) => {
  const io = captureIo(inputs);
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
};

describe("kvmx xsave layout", () => {
  it("--json gives the contract shape (default XCR0 = the profile's)", async () => {
    const r = await run(["xsave", "layout", "--profile", "kvm-pvm", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({
      schemaVersion: 1, profile: "kvm-pvm", xcr0: "0xe7", format: "standard", size: 2688,
      components: [
        { index: 0, name: "FP", offset: 0, size: 160 },
        { index: 1, name: "SSE", offset: 160, size: 256 },
        { index: 2, name: "YMM", offset: 576, size: 256 },
        { index: 5, name: "OPMASK", offset: 1088, size: 64 },
        { index: 6, name: "ZMM_Hi256", offset: 1152, size: 512 },
        { index: 7, name: "Hi16_ZMM", offset: 1664, size: 1024 },
      ],
    });
  });
  it("--compacted on dmr puts APX last, and the table form shows sizes", async () => {
    const r = await run(["xsave", "layout", "--profile", "dmr", "--xcr0", "0x80007", "--compacted", "--json"]);
    expect(JSON.parse(r.out)).toMatchObject({ format: "compacted", size: 960, components: [{}, {}, { name: "YMM", offset: 576 }, { name: "APX", offset: 832, size: 128 }] });
    const t = await run(["xsave", "layout", "--profile", "dmr"]);
    expect(t.out).toMatch(/dmr, XCR0 0xe02e7, standard format: 11008 bytes/);
    expect(t.out).toMatch(/19\s*│\s*APX\s*│\s*960/);
  });
  it("exits 65 for a component the profile lacks, bad hex and an XCR0 without x87; 2 for an unknown profile", async () => {
    expect((await run(["xsave", "layout", "--profile", "spr", "--xcr0", "0x80003"])).code).toBe(65);
    expect((await run(["xsave", "layout", "--profile", "spr", "--xcr0", "xyz"])).code).toBe(65);
    const x87 = await run(["xsave", "layout", "--profile", "spr", "--xcr0", "6"]);
    expect([x87.code, x87.err]).toEqual([65, "kvmx: XCR0 0x6 has bit 0 (x87) clear: XSETBV #GPs on it, so no XSAVE image has this layout\n"]);
    const r = await run(["xsave", "layout", "--profile", "p4"]);
    expect([r.code, r.err]).toEqual([2, expect.stringMatching(/^kvmx: --profile: unknown CPU profile "p4" \(known: spr, kvm-pvm, dmr, zen; `--profile help` describes them\)\n$/)]);
  });
});

describe("kvmx xsave decode/encode", () => {
  it("decodes the fixture into header, legacy and components", async () => {
    const r = await run(["xsave", "decode", "img.bin", "--json"], { "img.bin": image });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.header).toMatchObject({ xstateBv: "0xe7", xcompBv: "0x0" });
    expect(j.legacy).toMatchObject({ fcw: 0x37f, mxcsr: 0x1f80, fip: "0x401000" });
    expect(j.components.map((c: { index: number; present: boolean }) => [c.index, c.present])).toEqual([
      [0, true], [1, true], [2, true], [5, true], [6, true], [7, true],
    ]);
  });
  it("shows component 19 as r16..r31 for an APX profile", async () => {
    const r = await run(["xsave", "decode", "-", "--profile", "dmr", "--xcr0", "0x800e7", "--json"], { "-": image });
    const apx = JSON.parse(r.out).components.find((c: { index: number }) => c.index === 19);
    expect(apx).toMatchObject({ name: "APX", offset: 960, present: false, registers: { r16: "0x0", r31: "0x0" } });
    const human = await run(["xsave", "decode", "-", "--profile", "dmr", "--xcr0", "0x800e7"], { "-": image });
    expect(human.out).toContain("R16..R31 (component 19) (XSTATE_BV[19]=0");
    expect(human.out).toMatch(/r16 0x0/);
  });
  it("a readable summary without --json", async () => {
    const r = await run(["xsave", "decode", "img.bin"], { "img.bin": image });
    expect(r.out).toMatch(/^XSAVE image: standard format, 4096 bytes, profile kvm-pvm\nXSTATE_BV 0xe7 \(FP SSE YMM OPMASK ZMM_Hi256 Hi16_ZMM\)/);
    // No --profile: the choice and its reason go to stderr, and nothing else does for a clean image.
    expect(r.err).toBe(
      "kvmx: no --profile: decoding img.bin as kvm-pvm (4096 bytes is KVM_GET_XSAVE's size and XSTATE_BV 0xe7 is within its XCR0 0xe7; " +
        "zen, spr, dmr would fit too)\n",
    );
  });
  it("decode → encode is byte-identical, via hex and via --out-file bin", async () => {
    const d = await run(["xsave", "decode", "img.bin", "--json"], { "img.bin": image });
    const e = await run(["xsave", "encode", "img.json"], { "img.json": d.out });
    expect(e.code).toBe(0);
    expect(Buffer.from(e.out.trim(), "hex")).toEqual(image);
    const dir = mkdtempSync(join(tmpdir(), "kvmx-xsave-"));
    const out = join(dir, "again.bin");
    expect((await run(["xsave", "encode", "img.json", "--out-file", out], { "img.json": d.out })).code).toBe(0);
    expect(readFileSync(out)).toEqual(image);
    const viaHex = await run(["xsave", "decode", "img.hex", "--input", "hex", "--json"], { "img.hex": e.out });
    expect(viaHex.out).toBe(d.out);
  });
  it("encode --output bin writes the raw image to standard output", async () => {
    const d = await run(["xsave", "decode", "img.bin", "--json"], { "img.bin": image });
    const io = captureIo({ "img.json": d.out });
    expect(await main(["xsave", "encode", "img.json", "--output", "bin"], io)).toBe(0);
    expect(io.stdoutBytes()).toEqual(image);
    expect(io.stdout()).toBe("");
  });
  it("bad input exits 65 with one line on stderr", async () => {
    const cases: [string[], Record<string, string | Buffer>, RegExp][] = [
      [["xsave", "decode", "t.bin"], { "t.bin": image.subarray(0, 300) }, /truncated/],
      [["xsave", "decode", "t.hex", "--input", "hex"], { "t.hex": "0g" }, /not a hex digit/],
      [["xsave", "encode", "t.json"], { "t.json": "{not json" }, /not JSON/],
      [["xsave", "decode", "/nonexistent/img.bin"], {}, /^kvmx: \/nonexistent\/img.bin: cannot read XSAVE image: no such file or directory \(ENOENT\)$/m],
      [["xsave", "decode", "."], {}, /^kvmx: \.: cannot read XSAVE image: is a directory \(EISDIR\)$/m],
      [["xsave", "encode", "t.json"], { "t.json": '{"schemaVersion":1}' }, /format/],
    ];
    for (const [args, inputs, msg] of cases) {
      const r = await run(args, inputs);
      expect(r.code, args.join(" ")).toBe(65);
      expect(r.err).toMatch(msg);
      expect(r.err.trim().split("\n")).toHaveLength(1);
    }
  });
});

describe("kvmx xsave decode warnings and the profile it picks", () => {
  const patched = (f: (b: Buffer, dv: DataView) => void, size = image.length) => {
    const b = Buffer.alloc(size);
    image.copy(b);
    f(b, new DataView(b.buffer, b.byteOffset, b.byteLength));
    return b;
  };
  it("warns about header bits KVM_SET_XSAVE would reject, and still decodes", async () => {
    const apx = patched((_, dv) => dv.setBigUint64(512, 0x800e7n, true));
    const r = await run(["xsave", "decode", "a.bin", "--profile", "dmr", "--xcr0", "0xe7"], { "a.bin": apx });
    expect(r.code).toBe(0);
    expect(r.err).toBe("kvmx: warning: a.bin: KVM_SET_XSAVE would fail with EINVAL: XSTATE_BV 0x800e7 has bits 0x80000 outside XCR0 0xe7\n");
    const xcomp = patched((_, dv) => dv.setBigUint64(520, 0x7n, true));
    const c = await run(["xsave", "decode", "c.bin", "--profile", "kvm-pvm"], { "c.bin": xcomp });
    expect([c.code, c.err]).toEqual([0, expect.stringContaining("XCOMP_BV 0x7 is not 0 in a standard-format image")]);
  });
  it("warns about non-zero bytes past the layout", async () => {
    const tail = patched((b) => void (b[4000] = 0xaa));
    const r = await run(["xsave", "decode", "t.bin", "--profile", "kvm-pvm"], { "t.bin": tail });
    expect(r.err).toMatch(/^kvmx: warning: t.bin: bytes 2688..4095 lie beyond the standard layout \(2688 bytes\) and 1 of them are not zero/);
  });
  it("picks dmr for an 11008-byte KVM_GET_XSAVE2 image with APX state; says why it cannot pick for an odd size", async () => {
    const big = patched((_, dv) => dv.setBigUint64(512, 0x800e7n, true), 11008);
    const r = await run(["xsave", "decode", "big.bin", "--json"], { "big.bin": big });
    expect([r.code, JSON.parse(r.out).profile ?? r.err]).toEqual([0, expect.anything()]);
    expect(r.err).toMatch(/^kvmx: no --profile: decoding big.bin as dmr \(11008 bytes is its KVM_GET_XSAVE2 size and XSTATE_BV 0x800e7 is within its XCR0 0xe02e7\)\n$/);
    const odd = await run(["xsave", "decode", "odd.bin"], { "odd.bin": image.subarray(0, 3000) });
    expect(odd.code).toBe(2);
    expect(odd.err).toMatch(/^kvmx: odd.bin: no built-in CPU profile fits a 3000-byte image with XSTATE_BV 0xe7 \(spr's images are 4096 or 11008 bytes; kvm-pvm's images are 4096 or 2688 bytes.*name one with --profile\n$/);
  });
});
