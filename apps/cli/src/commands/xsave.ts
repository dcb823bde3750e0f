import {
  CPU_PROFILE_NAMES,
  InputError,
  KVM_XSAVE_SIZE,
  KvmxError,
  XSAVE_EXTENDED_OFFSET,
  bytesToHex,
  componentName,
  cpuProfile,
  decodeXsave,
  hexToBytes,
  kvmSetXsaveRejections,
  trailingBytes,
  u64Hex,
  xsaveFromJson,
  xsaveLayout,
  xsaveToJson,
  type CpuProfile,
  type XsaveImage,
} from "@kvmx/core";
import { Option, type Command } from "commander";
import { readInputFile, writeOutputFile } from "../files.js";
import { toJson, type Io } from "../io.js";
import { renderTable } from "../table.js";
import { loadProfile, PROFILE_HELP } from "./cpu.js";
import { parseXcr0Arg, XCR0_INPUT_RULE } from "./xcr0.js";

function featureNames(mask: bigint): string {
  const names: string[] = [];
  for (let i = 0; i < 64; i++) if ((mask >> BigInt(i)) & 1n) names.push(i === 63 ? "COMPACTED" : componentName(i));
  return names.join(" ") || "none";
}

/** Binary, or hex text when `--input hex` (or, by default, when the whole input is hex digits and whitespace). */
function imageBytes(raw: Buffer, input: string | undefined, where: string): Uint8Array {
  const text = raw.toString("latin1");
  const looksHex = raw.length > 0 && /^[\s0-9a-fA-Fx]*$/.test(text);
  if (input === "hex" || (input === undefined && looksHex)) return hexToBytes(text, where);
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** An XCR0 given for a layout: XSETBV #GPs on one without x87 (XCR0[0]), so no layout has one. */
function layoutXcr0(text: string): bigint {
  const xcr0 = parseXcr0Arg(text);
  if ((xcr0 & 1n) === 0n) throw new InputError(`XCR0 ${u64Hex(xcr0)} has bit 0 (x87) clear: XSETBV #GPs on it, so no XSAVE image has this layout`);
  return xcr0;
}

const popcount = (v: bigint): number => v.toString(2).replaceAll("0", "").length;

/**
 * The built-in profile for an image when the user named none: the header's components (XSTATE_BV, or
 * XCOMP_BV for a compacted image, or --xcr0) must be ones the profile supports, and a standard image
 * must have a size the profile's KVM produces (KVM_GET_XSAVE's 4096, KVM_GET_XSAVE2's, or the full
 * XSAVE size). Among those, the one whose whole layout fits the image, then the one with the fewest
 * components beyond the image's. Returns the profile and a sentence saying why; a usage error saying
 * why each profile does not fit when none does.
 */
export function pickProfile(bytes: Uint8Array, xcr0: bigint | undefined, where: string): { profile: CpuProfile; why: string } {
  if (bytes.length < XSAVE_EXTENDED_OFFSET) {
    throw new InputError(`${where} is truncated: ${bytes.length} bytes, the legacy area and header alone need ${XSAVE_EXTENDED_OFFSET}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const xstateBv = dv.getBigUint64(512, true);
  const xcompBv = dv.getBigUint64(520, true);
  const compacted = xcompBv >> 63n === 1n;
  const wanted = (compacted ? xcompBv & ~(1n << 63n) : (xcr0 ?? xstateBv)) | 3n;
  const what = compacted ? `XCOMP_BV ${u64Hex(xcompBv)}` : xcr0 !== undefined ? `XCR0 ${u64Hex(xcr0)}` : `XSTATE_BV ${u64Hex(xstateBv)}`;
  const fits: { profile: CpuProfile; sizeWhy: string }[] = [];
  const misfits: string[] = [];
  for (const name of CPU_PROFILE_NAMES) {
    const p = cpuProfile(name);
    const supported = p.supportedXcr0 | p.supportedXss | 3n;
    if ((wanted & ~supported) !== 0n) {
      misfits.push(`${name} lacks components ${u64Hex(wanted & ~supported)}`);
      continue;
    }
    const xsave2 = Math.max(KVM_XSAVE_SIZE, p.maxStandardSize);
    const sizeWhy = compacted
      ? bytes.length >= xsaveLayout(p, wanted, "compacted").size ? "its compacted layout fits" : undefined
      : bytes.length === KVM_XSAVE_SIZE ? `${bytes.length} bytes is KVM_GET_XSAVE's size`
      : bytes.length === xsave2 ? `${bytes.length} bytes is its KVM_GET_XSAVE2 size`
      : bytes.length === p.maxStandardSize ? `${bytes.length} bytes is its full XSAVE size`
      : undefined;
    if (sizeWhy === undefined) {
      misfits.push(compacted ? `${name}'s compacted layout needs more than ${bytes.length} bytes` : `${name}'s images are ${[...new Set([KVM_XSAVE_SIZE, xsave2, p.maxStandardSize])].join(" or ")} bytes`);
      continue;
    }
    fits.push({ profile: p, sizeWhy });
  }
  if (fits.length === 0) {
    throw new KvmxError(`${where}: no built-in CPU profile fits a ${bytes.length}-byte image with ${what} (${misfits.join("; ")}); name one with --profile`, "usage");
  }
  const whole = (p: CpuProfile) => (p.maxStandardSize <= bytes.length ? 0 : 1);
  const extra = (p: CpuProfile) => popcount(p.supportedXcr0 & ~wanted);
  fits.sort((x, y) => whole(x.profile) - whole(y.profile) || extra(x.profile) - extra(y.profile));
  const [best, ...others] = fits;
  const also = others.length ? `; ${others.map((f) => f.profile.name).join(", ")} would fit too` : "";
  return { profile: best!.profile, why: `${best!.sizeWhy} and ${what} is within its XCR0 ${u64Hex(best!.profile.supportedXcr0)}${also}` };
}

/** What KVM_SET_XSAVE would reject and bytes no component holds, as warning lines. */
function decodeWarnings(img: XsaveImage, xcr0: bigint, where: string): string[] {
  const out = kvmSetXsaveRejections(img, xcr0).map((r) => `${where}: KVM_SET_XSAVE would fail with EINVAL: ${r}`);
  const t = trailingBytes(img);
  if (t) {
    out.push(
      `${where}: bytes ${t.start}..${t.end - 1} lie beyond the ${img.format} layout (${img.layout.size} bytes) and ${t.nonZero} of them are not zero: ` +
        "no component holds them (wrong --profile or --xcr0, or data appended to the image?)",
    );
  }
  return out;
}

function summary(img: XsaveImage): string {
  const h = (v: number, w: number) => `0x${v.toString(16).padStart(w, "0")}`;
  const lines = [
    `XSAVE image: ${img.format} format, ${img.size} bytes, profile ${img.profileName}`,
    `XSTATE_BV ${u64Hex(img.xstateBv)} (${featureNames(img.xstateBv)})   XCOMP_BV ${u64Hex(img.xcompBv)}`,
    `legacy: FCW ${h(img.fcw, 4)} FSW ${h(img.fsw, 4)} FTW ${h(img.ftw, 2)} FOP ${h(img.fop, 4)} ` +
      `FIP ${u64Hex(img.fip)} FDP ${u64Hex(img.fdp)} MXCSR ${h(img.mxcsr, 8)} MXCSR_MASK ${h(img.mxcsrMask, 8)}`,
  ];
  const rows = img.components().map((c) => [String(c.index), c.name, String(c.offset), String(c.size), c.present ? "yes" : "no"]);
  lines.push(renderTable({ head: ["#", "component", "offset", "size", "present"], rows }));
  const regs = img.apxRegisters();
  if (regs) {
    const present = (img.xstateBv >> 19n) & 1n ? "" : " (XSTATE_BV[19]=0: the registers are in their init state, zeros)";
    lines.push(`R16..R31 (component 19)${present}:`);
    for (let k = 0; k < 16; k += 4) {
      lines.push(("  " + regs.slice(k, k + 4).map((v, j) => `r${16 + k + j} ${u64Hex(v).padEnd(18)}`).join(" ")).trimEnd());
    }
  }
  return lines.join("\n") + "\n";
}

interface LayoutOptions {
  profile: string;
  xcr0?: string;
  compacted?: boolean;
  json?: boolean;
}
interface DecodeOptions {
  input?: "bin" | "hex";
  profile?: string;
  xcr0?: string;
  json?: boolean;
}
interface EncodeOptions {
  output?: "bin" | "hex";
  outFile?: string;
}

/** `kvmx xsave layout|decode|encode`: XSAVE layouts and the byte-exact image codec (KVM_GET_XSAVE dumps too). */
export function register(program: Command, io: Io): void {
  const xsave = program.command("xsave").description("XSAVE layouts and images (standard and compacted, APX component 19 included)");

  xsave
    .command("layout")
    .description("where each state component sits for a CPU profile and XCR0")
    .requiredOption("--profile <name|file>", PROFILE_HELP)
    .option("--xcr0 <hex>", `requested-feature bitmap, ${XCR0_INPUT_RULE}; bit 0 (x87) must be set (default: the profile's supported XCR0)`)
    .option("--compacted", "the compacted format (XSAVEC/XSAVES) instead of the standard one")
    .option("--json", "machine-readable output")
    .action(async (opts: LayoutOptions) => {
      const profile = await loadProfile(io, opts.profile);
      const xcr0 = opts.xcr0 === undefined ? profile.supportedXcr0 : layoutXcr0(opts.xcr0);
      const format = opts.compacted ? "compacted" : "standard";
      const layout = xsaveLayout(profile, xcr0, format);
      if (opts.json) {
        io.out(toJson({ schemaVersion: 1, profile: profile.name, xcr0, format, size: layout.size, components: layout.components }));
        return;
      }
      const rows = layout.components.map((c) => [String(c.index), c.name, String(c.offset), String(c.size), String(c.offset + c.size)]);
      const table = renderTable({ head: ["#", "component", "offset", "size", "end"], rows });
      io.out(`${profile.name}, XCR0 ${u64Hex(xcr0)}, ${format} format: ${layout.size} bytes\n${table}\n`);
    });

  xsave
    .command("decode")
    .description(
      "decode an XSAVE image (e.g. a KVM_GET_XSAVE dump) into its parts; warns on stderr about what KVM_SET_XSAVE would reject " +
        "and about non-zero bytes no component holds",
    )
    .argument("<file>", "image file, or - for standard input")
    .addOption(new Option("--input <format>", "bin, or hex (digits, whitespace and 0x ignored); default: hex when the input is only hex digits, else bin").choices(["bin", "hex"]))
    .option("--profile <name|file>", `${PROFILE_HELP}; default: picked by the image's size and header (the choice is said on stderr)`)
    .option("--xcr0 <hex>", `standard format: components to lay out, ${XCR0_INPUT_RULE} (default: the profile's supported XCR0)`)
    .option("--json", "machine-readable output; `kvmx xsave encode` turns it back into the exact bytes")
    .action(async (file: string, opts: DecodeOptions) => {
      const xcr0 = opts.xcr0 !== undefined ? layoutXcr0(opts.xcr0) : undefined;
      const where = file === "-" ? "<stdin>" : file;
      const bytes = imageBytes(await readInputFile(io, file, "XSAVE image"), opts.input, where);
      let profile: CpuProfile;
      if (opts.profile !== undefined) profile = await loadProfile(io, opts.profile);
      else {
        const picked = pickProfile(bytes, xcr0, where);
        profile = picked.profile;
        io.err(`kvmx: no --profile: decoding ${where} as ${profile.name} (${picked.why})\n`);
      }
      const img = decodeXsave(bytes, { profile, ...(xcr0 !== undefined ? { xcr0 } : {}) }, where);
      for (const w of decodeWarnings(img, xcr0 ?? profile.supportedXcr0, where)) io.err(`kvmx: warning: ${w}\n`);
      io.out(opts.json ? toJson(xsaveToJson(img)) : summary(img));
    });

  xsave
    .command("encode")
    .description("turn `kvmx xsave decode --json` output back into the image bytes")
    .argument("<file>", "JSON file, or - for standard input")
    .addOption(new Option("--output <format>", "hex or bin (default: hex on standard output, bin with --out-file)").choices(["hex", "bin"]))
    .option("--out-file <path>", "write the image to this file instead of stdout")
    .action(async (file: string, opts: EncodeOptions) => {
      const where = file === "-" ? "<stdin>" : file;
      const text = (await readInputFile(io, file, "XSAVE JSON")).toString("utf8");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new InputError(`not JSON (${(e as Error).message.replace(/\s+/g, " ")})`, { file: where }, { cause: e });
      }
      const bytes = xsaveFromJson(json, where).encode();
      const output = opts.output ?? (opts.outFile ? "bin" : "hex");
      if (opts.outFile) {
        await writeOutputFile(io, opts.outFile, output === "bin" ? bytes : bytesToHex(bytes) + "\n", "--out-file");
        return;
      }
      if (output === "bin") io.outBytes(bytes);
      else io.out(bytesToHex(bytes) + "\n");
    });
}
