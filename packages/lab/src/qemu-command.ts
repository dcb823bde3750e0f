import { existsSync } from "node:fs";
import { MOUNT_TAG } from "./guest-init.js";

/**
 * The QEMU command line of one lab boot. `-accel tcg` because the host has no KVM of its own; the
 * CPU model must offer SVM (`max` does under TCG: an AMD-like CPU with SVM and NPT). Three serial
 * ports: ttyS0 the console (kernel and /init reports), ttyS1 the command's stdout, ttyS2 its stderr;
 * each is a Unix socket the host listens on. No network, no display, no disks: the host's files come
 * over virtio-9p.
 */
export interface QemuBoot {
  readonly qemu: string;
  readonly cpu: string;
  readonly memoryMiB: number;
  readonly smp: number;
  readonly bootImage: string;
  readonly initramfs: string;
  readonly controlDir: string;
  readonly outDir?: string;
  /** Extra kernel command-line words (after the lab's own). */
  readonly kernelArgs?: readonly string[];
  readonly sockets: { readonly console: string; readonly stdout: string; readonly stderr: string };
}

/** qboot is a minimal firmware that loads -kernel images; SeaBIOS spends seconds under TCG. */
export const QBOOT = "/usr/share/qemu/qboot.rom";

/** QEMU's option parser takes "," as a separator: a literal comma in a value is written ",,". */
export const qemuValue = (s: string): string => s.replaceAll(",", ",,");

/** CPU models are QEMU names plus feature flags: letters, digits and . _ - + = , only. */
export const CPU_MODEL = /^[A-Za-z0-9][A-Za-z0-9._=+,-]*$/;

export function qemuArgs(b: QemuBoot): string[] {
  const share = (path: string, tag: string, ro: boolean) => [
    "-virtfs",
    `local,path=${qemuValue(path)},mount_tag=${tag},security_model=none,multidevs=remap${ro ? ",readonly=on" : ""}`,
  ];
  const serial = (id: string, path: string) => ["-chardev", `socket,id=${id},path=${qemuValue(path)}`, "-serial", `chardev:${id}`];
  return [
    "-nodefaults",
    "-no-user-config",
    "-accel",
    b.smp > 1 ? "tcg,thread=multi" : "tcg",
    "-M",
    "pc",
    "-cpu",
    b.cpu,
    "-m",
    `${b.memoryMiB}M`,
    "-smp",
    String(b.smp),
    "-display",
    "none",
    "-no-reboot",
    ...(existsSync(QBOOT) ? ["-bios", QBOOT] : []),
    "-kernel",
    b.bootImage,
    "-initrd",
    b.initramfs,
    "-append",
    ["console=ttyS0 panic=-1 quiet", ...(b.kernelArgs ?? [])].join(" "),
    ...share("/", MOUNT_TAG.hostRoot, true),
    ...share(b.controlDir, MOUNT_TAG.control, false),
    ...(b.outDir ? share(b.outDir, MOUNT_TAG.output, false) : []),
    ...serial("console", b.sockets.console),
    ...serial("out", b.sockets.stdout),
    ...serial("err", b.sockets.stderr),
  ];
}
