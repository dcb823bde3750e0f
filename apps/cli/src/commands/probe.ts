import { KVM_CAP_MEANING, openKvm, probeKvm, DEFAULT_KVM_PATH, type KvmCapName, type KvmProbe } from "@kvmx/uapi";
import type { Command } from "commander";
import Table from "cli-table3";
import { toJson, type Io } from "../io.js";

interface ProbeOptions {
  json?: boolean;
  device: string;
}

const hex = (v: number | bigint, width = 0) => `0x${v.toString(16).padStart(width, "0")}`;

function capText(name: KvmCapName, value: number): string {
  if (value === 0) return "no";
  switch (KVM_CAP_MEANING[name]) {
    case "bool":
      return "yes";
    case "count":
      return String(value);
    case "bytes":
      return `${value} bytes`;
    case "mask":
      return hex(value);
  }
}

/** The human report of `kvmx probe`. */
export function formatProbe(p: KvmProbe, device: string): string {
  const lines = [`${device}: KVM API version ${p.apiVersion}`, "", "capabilities (KVM_CHECK_EXTENSION):"];
  for (const [name, value] of Object.entries(p.caps) as [KvmCapName, number][]) {
    lines.push(`  KVM_CAP_${name.padEnd(16)} ${capText(name, value)}`);
  }
  lines.push("", `supported XCR0 (KVM_GET_SUPPORTED_CPUID 0xD.0 EDX:EAX): ${hex(p.supportedXcr0)}`, "");
  const t = new Table({ head: ["leaf", "sub", "flags", "eax", "ebx", "ecx", "edx"], style: { head: [], border: [], compact: true } });
  for (const e of p.cpuid) t.push([hex(e.function, 8), String(e.index), String(e.flags), hex(e.eax, 8), hex(e.ebx, 8), hex(e.ecx, 8), hex(e.edx, 8)]);
  lines.push(`KVM_GET_SUPPORTED_CPUID (${p.cpuid.length} entries):`, t.toString());
  return lines.join("\n") + "\n";
}

/** The `--json` document of `kvmx probe` (schemaVersion 1; u64 values become "0x…" in toJson). */
export function probeJson(p: KvmProbe, device: string) {
  return {
    schemaVersion: 1,
    device,
    apiVersion: p.apiVersion,
    caps: p.caps,
    supportedXcr0: p.supportedXcr0,
    cpuid: p.cpuid.map(({ function: fn, index, flags, eax, ebx, ecx, edx }) => ({ function: fn, index, flags, eax, ebx, ecx, edx })),
  };
}

/** `kvmx probe`: what the real /dev/kvm here supports. No device → KvmError "unavailable" → exit 69. */
export function register(program: Command, io: Io): void {
  program
    .command("probe")
    .description("report what the real /dev/kvm supports: API version, capabilities, supported XCR0 and CPUID")
    .option("--json", "machine-readable output")
    .option("--device <path>", "KVM device node", DEFAULT_KVM_PATH)
    .action((opts: ProbeOptions) => {
      const kvm = openKvm(opts.device);
      let result: KvmProbe;
      try {
        result = probeKvm(kvm);
      } finally {
        kvm.close();
      }
      io.out(opts.json ? toJson(probeJson(result, opts.device)) : formatProbe(result, opts.device));
    });
}
