import { closeSync, constants, existsSync, openSync, readFileSync, readSync } from "node:fs";

/**
 * What kind of KVM serves /dev/kvm here, as far as a model comparison cares: the vendor module, and
 * whether the CPU under it is emulated (QEMU TCG: the lab) — each kind has its own table of accepted
 * differences (src/diff/host-quirks.ts). Read from /proc and /sys; nothing is opened but files.
 */
export const HOST_KINDS = ["kvm_amd on an emulated CPU", "kvm_pvm", "kvm_amd", "kvm_intel", "unknown"] as const;
export type HostKind = (typeof HOST_KINDS)[number];

export interface HostDescription {
  /** uname -r */
  readonly kernel: string;
  /** /proc/cpuinfo "model name" */
  readonly cpuModel: string;
  readonly hostKind: HostKind;
  /** kvm_amd, kvm_intel or kvm_pvm (whichever is loaded) */
  readonly vendorModule: string | undefined;
  /** num_online_cpus(): KVM_CAP_NR_VCPUS depends on it */
  readonly onlineCpus: number;
  /** The QEMU -cpu model when running inside `kvmx lab`. */
  readonly qemuCpu?: string;
  /**
   * The host kernel's user xfeatures ("x86/fpu: Enabled xstate features 0x…" in the kernel log), which
   * KVM_GET_XSAVE reports in bytes 464..471; absent when the log cannot be read (not root).
   */
  readonly userXfeatures?: string;
}

/** The environment variable `kvmx lab exec` sets to the QEMU CPU model the lab runs. */
export const LAB_QEMU_CPU_ENV = "KVMX_LAB_QEMU_CPU";

const read = (p: string): string => (existsSync(p) ? readFileSync(p, "utf8") : "");

/** Online CPUs from a sysfs range list ("0-3,6"). */
export function countCpuList(list: string): number {
  let n = 0;
  for (const part of list.trim().split(",").filter(Boolean)) {
    const [a, b] = part.split("-").map(Number);
    n += b === undefined ? 1 : b - a! + 1;
  }
  return n;
}

export function hostKindOf(vendorModule: string | undefined, cpuModel: string, qemuCpu: string | undefined): HostKind {
  if (vendorModule === "kvm_pvm") return "kvm_pvm";
  if (vendorModule === "kvm_amd") return qemuCpu !== undefined || /\b(QEMU|TCG)\b/.test(cpuModel) ? "kvm_amd on an emulated CPU" : "kvm_amd";
  if (vendorModule === "kvm_intel") return "kvm_intel";
  return "unknown";
}

/** The kernel log's records, read without blocking from /dev/kmsg; "" when it cannot be read. */
function kernelLog(): string {
  let fd: number;
  try {
    fd = openSync("/dev/kmsg", constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return "";
  }
  const buf = Buffer.alloc(8192);
  let out = "";
  try {
    for (;;) out += buf.toString("utf8", 0, readSync(fd, buf)) + "\n";
  } catch {
    // EAGAIN: the end of the log (or EPIPE for a record overwritten meanwhile; what was read stands)
  } finally {
    closeSync(fd);
  }
  return out;
}

export function describeHost(env: NodeJS.ProcessEnv = process.env): HostDescription {
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(read("/proc/cpuinfo"))?.[1]?.trim() ?? "";
  const vendorModule = ["kvm_pvm", "kvm_amd", "kvm_intel"].find((m) => existsSync(`/sys/module/${m}`));
  const qemuCpu = env[LAB_QEMU_CPU_ENV] || undefined;
  const userXfeatures = /x86\/fpu: Enabled xstate features (0x[0-9a-f]+)/.exec(kernelLog())?.[1];
  return {
    kernel: read("/proc/sys/kernel/osrelease").trim(),
    cpuModel,
    hostKind: hostKindOf(vendorModule, cpuModel, qemuCpu),
    vendorModule,
    onlineCpus: countCpuList(read("/sys/devices/system/cpu/online")) || 1,
    ...(qemuCpu ? { qemuCpu } : {}),
    ...(userXfeatures ? { userXfeatures } : {}),
  };
}
