import {
  InputError,
  bytesToHex,
  componentName,
  decodeXsave,
  hexToBytes,
  u64Hex,
  xsaveFromJson,
  xsaveLayout,
  xsaveToJson,
  type XsaveImage,
} from "@kvmx/core";
import type { Command } from "commander";
import Table from "cli-table3";
import { toJson, type Io } from "../io.js";
import { loadProfile } from "./cpu.js";
import { parseXcr0Arg } from "./xcr0.js";

/** Default profile for images: the class of machine kvmx was built on (FACTS.md §8). */
const DEFAULT_PROFILE = "spr";

const plainTable = (head: string[]) => new Table({ head, style: { head: [], border: [] } });

function featureNames(mask: bigint): string {
  const names: string[] = [];
  for (let i = 0; i < 64; i++) if ((mask >> BigInt(i)) & 1n) names.push(i === 63 ? "COMPACTED" : componentName(i));
  return names.join(" ") || "none";
}

/** Binary, or hex text when `--input hex` (or, by default, when the whole input is hex digits and whitespace). */
function imageBytes(raw: Buffer, input: string | undefined, where: string): Uint8Array {
  if (input !== undefined && input !== "bin" && input !== "hex") throw new InputError(`--input "${input}" is not bin or hex`);
  const text = raw.toString("latin1");
  const looksHex = raw.length > 0 && /^[\s0-9a-fA-Fx]*$/.test(text);
  if (input === "hex" || (input === undefined && looksHex)) return hexToBytes(text, where);
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** Reads FILE or "-"; a file that cannot be read is bad input (exit 65), not a kvmx bug. */
async function readInputFile(io: Io, file: string): Promise<Buffer> {
  try {
    return await io.readInput(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string") throw new InputError(`cannot read ${file}: ${code}`, undefined, { cause: e });
    throw e;
  }
}

function summary(img: XsaveImage): string {
  const h = (v: number, w: number) => `0x${v.toString(16).padStart(w, "0")}`;
  const lines = [
    `XSAVE image: ${img.format} format, ${img.size} bytes, profile ${img.profileName}`,
    `XSTATE_BV ${u64Hex(img.xstateBv)} (${featureNames(img.xstateBv)})   XCOMP_BV ${u64Hex(img.xcompBv)}`,
    `legacy: FCW ${h(img.fcw, 4)} FSW ${h(img.fsw, 4)} FTW ${h(img.ftw, 2)} FOP ${h(img.fop, 4)} ` +
      `FIP ${u64Hex(img.fip)} FDP ${u64Hex(img.fdp)} MXCSR ${h(img.mxcsr, 8)} MXCSR_MASK ${h(img.mxcsrMask, 8)}`,
  ];
  const t = plainTable(["#", "component", "offset", "size", "present"]);
  for (const c of img.components()) t.push([String(c.index), c.name, String(c.offset), String(c.size), c.present ? "yes" : "no"]);
  lines.push(t.toString());
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
  input?: string;
  profile: string;
  xcr0?: string;
  json?: boolean;
}
interface EncodeOptions {
  output?: string;
  outFile?: string;
}

/** `kvmx xsave layout|decode|encode`: XSAVE layouts and the byte-exact image codec (KVM_GET_XSAVE dumps too). */
export function register(program: Command, io: Io): void {
  const xsave = program.command("xsave").description("XSAVE layouts and images (standard and compacted, APX component 19 included)");

  xsave
    .command("layout")
    .description("where each state component sits for a CPU profile and XCR0")
    .requiredOption("--profile <name>", "CPU profile (see `kvmx cpu profiles`) or a CPUID dump JSON file")
    .option("--xcr0 <hex>", "requested-feature bitmap (default: the profile's supported XCR0)")
    .option("--compacted", "the compacted format (XSAVEC/XSAVES) instead of the standard one")
    .option("--json", "machine-readable output")
    .action(async (opts: LayoutOptions) => {
      const profile = await loadProfile(io, opts.profile);
      const xcr0 = opts.xcr0 === undefined ? profile.supportedXcr0 : parseXcr0Arg(opts.xcr0);
      const format = opts.compacted ? "compacted" : "standard";
      const layout = xsaveLayout(profile, xcr0, format);
      if (opts.json) {
        io.out(toJson({ schemaVersion: 1, profile: profile.name, xcr0, format, size: layout.size, components: layout.components }));
        return;
      }
      const t = plainTable(["#", "component", "offset", "size", "end"]);
      for (const c of layout.components) t.push([String(c.index), c.name, String(c.offset), String(c.size), String(c.offset + c.size)]);
      io.out(`${profile.name}, XCR0 ${u64Hex(xcr0)}, ${format} format: ${layout.size} bytes\n${t.toString()}\n`);
    });

  xsave
    .command("decode")
    .description("decode an XSAVE image (e.g. a KVM_GET_XSAVE dump) into its parts")
    .argument("<file>", "image file, or - for standard input")
    .option("--input <format>", "bin or hex (default: hex when the input is only hex digits, else bin)")
    .option("--profile <name>", "CPU profile giving sizes and offsets, or a CPUID dump JSON file", DEFAULT_PROFILE)
    .option("--xcr0 <hex>", "standard format: components to lay out (default: the profile's supported XCR0)")
    .option("--json", "machine-readable output; `kvmx xsave encode` turns it back into the exact bytes")
    .action(async (file: string, opts: DecodeOptions) => {
      const profile = await loadProfile(io, opts.profile);
      const raw = await readInputFile(io, file);
      const where = file === "-" ? "<stdin>" : file;
      const bytes = imageBytes(raw, opts.input, where);
      const img = decodeXsave(bytes, { profile, ...(opts.xcr0 !== undefined ? { xcr0: parseXcr0Arg(opts.xcr0) } : {}) }, where);
      io.out(opts.json ? toJson(xsaveToJson(img)) : summary(img));
    });

  xsave
    .command("encode")
    .description("turn `kvmx xsave decode --json` output back into the image bytes")
    .argument("<file>", "JSON file, or - for standard input")
    .option("--output <format>", "hex or bin (default: hex on standard output, bin with --out-file)")
    .option("--out-file <path>", "write the image to this file instead of stdout")
    .action(async (file: string, opts: EncodeOptions) => {
      const where = file === "-" ? "<stdin>" : file;
      const text = (await readInputFile(io, file)).toString("utf8");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new InputError(`${where}: not JSON (${(e as Error).message})`, undefined, { cause: e });
      }
      const bytes = xsaveFromJson(json, where).encode();
      const output = opts.output ?? (opts.outFile ? "bin" : "hex");
      if (output !== "bin" && output !== "hex") throw new InputError(`--output "${output}" is not bin or hex`);
      if (opts.outFile) {
        const { writeFile } = await import("node:fs/promises");
        const { resolve } = await import("node:path");
        const data = output === "bin" ? bytes : Buffer.from(bytesToHex(bytes) + "\n");
        await writeFile(resolve(io.cwd, opts.outFile), data);
        return;
      }
      if (output === "bin") io.outBytes(bytes);
      else io.out(bytesToHex(bytes) + "\n");
    });
}
