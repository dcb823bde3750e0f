import { readdirSync, readFileSync } from "node:fs";
import { KvmxError } from "@kvmx/core";
import { KVM_CAP_MEANING, KvmError, openKvm, probeKvm, DEFAULT_KVM_PATH, type KvmCapName, type KvmProbe } from "@kvmx/uapi";
import type { Command } from "commander";
import { toJson, type Io } from "../io.js";
import { renderTable } from "../table.js";

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
  const rows = p.cpuid.map((e) => [hex(e.function, 8), String(e.index), String(e.flags), hex(e.eax, 8), hex(e.ebx, 8), hex(e.ecx, 8), hex(e.edx, 8)]);
  lines.push(`KVM_GET_SUPPORTED_CPUID (${p.cpuid.length} entries):`, renderTable({ head: ["leaf", "sub", "flags", "eax", "ebx", "ecx", "edx"], rows }));
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

/** What the host shows about virtualisation, for explaining a missing /dev/kvm. */
export interface HostVirtFacts {
  /** The CPU flags of /proc/cpuinfo (undefined when it cannot be read). */
  cpuFlags: readonly string[] | undefined;
  /** Loaded kernel modules (/sys/module). */
  modules: readonly string[];
}

export function readHostVirtFacts(): HostVirtFacts {
  let cpuFlags: string[] | undefined;
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags"));
    cpuFlags = line?.split(":")[1]?.trim().split(/\s+/);
  } catch {
    cpuFlags = undefined;
  }
  let modules: string[] = [];
  try {
    modules = readdirSync("/sys/module");
  } catch {
    modules = [];
  }
  return { cpuFlags, modules };
}

const LAB_HINT = "for a real KVM here, `kvmx lab probe` (or `kvmx lab exec -- kvmx probe`) runs it in a QEMU guest";

/**
 * The likely causes of a failed open of the KVM device, most specific first, from the errno and what
 * the host shows: no permission, a guest without nested virtualisation, the module not loaded, no
 * hardware support. The last entry is always the way to a real KVM through `kvmx lab`.
 */
export function kvmOpenCauses(errnoName: string, facts: HostVirtFacts): string[] {
  const causes: string[] = [];
  const flags = facts.cpuFlags ?? [];
  const hasVirt = flags.includes("vmx") || flags.includes("svm");
  const inGuest = flags.includes("hypervisor");
  const vendorModule = facts.modules.some((m) => m === "kvm_intel" || m === "kvm_amd");
  if (errnoName === "EACCES" || errnoName === "EPERM") {
    causes.push("no permission: add the user to the kvm group (or run as root)");
  } else {
    if (facts.cpuFlags && !hasVirt) {
      causes.push(inGuest ? "running inside a guest without nested virtualisation (no vmx/svm CPU flag)" : "the CPU shows no VMX/SVM (disabled in the firmware?)");
    } else if (!vendorModule) {
      causes.push("the kvm_intel/kvm_amd module is not loaded (modprobe kvm_intel or kvm_amd)");
    } else if (errnoName === "ENXIO" || errnoName === "ENODEV") {
      causes.push("the KVM module is loaded but found no usable hardware support");
    } else {
      causes.push("the KVM module is loaded but the device node is missing (no devtmpfs, or a container without it)");
    }
  }
  causes.push(LAB_HINT);
  return causes;
}

/** `kvmx probe`: what the real /dev/kvm here supports. No device → one line of likely causes, exit 69. */
export function register(program: Command, io: Io): void {
  program
    .command("probe")
    .description("report what the real /dev/kvm supports: API version, capabilities, supported XCR0 and CPUID")
    .option("--json", "machine-readable output (an error object when there is no device)")
    .option("--device <path>", "KVM device node", DEFAULT_KVM_PATH)
    .action((opts: ProbeOptions) => {
      let kvm;
      try {
        kvm = openKvm(opts.device);
      } catch (err) {
        if (!(err instanceof KvmError && err.category === "unavailable")) throw err;
        const causes = kvmOpenCauses(err.errnoName, readHostVirtFacts());
        if (opts.json) {
          io.out(toJson({ schemaVersion: 1, device: opts.device, error: { kind: "unavailable", errno: err.errnoName, message: err.message, causes } }));
        }
        throw new KvmxError(`${err.message}: no usable KVM — likely ${causes.join("; ")}`, "unavailable", { cause: err });
      }
      let result: KvmProbe;
      try {
        result = probeKvm(kvm);
      } finally {
        kvm.close();
      }
      io.out(opts.json ? toJson(probeJson(result, opts.device)) : formatProbe(result, opts.device));
    });
}
