/**
 * The lab's /init (busybox sh) and the names both sides agree on. The guest mounts the host's root
 * read-only over virtio-9p, puts a tmpfs overlay on it (so programs that write caches and reports
 * work, and nothing reaches the host), mounts proc/sysfs/devtmpfs (which holds /dev/kvm) inside it,
 * runs the command the host left in the control share in a chroot, writes its exit code back to the
 * control share and powers off. Console lines starting with "kvmx-lab: " are its reports to the host.
 */
export const MOUNT_TAG = { hostRoot: "hostroot", control: "kvmxctl", output: "kvmxout" } as const;
/** Where the control share appears inside the lab. */
export const GUEST_CONTROL_DIR = "/run/kvmx-lab";
export const CONTROL_FILES = { script: "run.sh", exitCode: "exit-code", outPath: "out-path" } as const;
export const CONSOLE_PREFIX = "kvmx-lab: ";
/** The load order file and module folder inside the initramfs. */
export const INITRAMFS_MODULES = "/lib/modules/lab";

const NINEP = "trans=virtio,version=9p2000.L,msize=512000";

export function guestInitScript(): string {
  return `#!/bin/busybox sh
# /init of the kvmx lab (written by @kvmx/lab)
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "${CONSOLE_PREFIX}$*"; }
stop() { say "$*"; sync; reboot -f; }
say "init $(up)"
while read -r m; do
  insmod "${INITRAMFS_MODULES}/$m" || stop "error: insmod $m failed"
done < ${INITRAMFS_MODULES}/load-order
say "modules $(up)"
mount -t 9p -o ${NINEP},cache=loose,ro ${MOUNT_TAG.hostRoot} /mnt/host || stop "error: cannot mount the host's files (9p)"
mount -t 9p -o ${NINEP} ${MOUNT_TAG.control} /mnt/ctl || stop "error: cannot mount the control share (9p)"
mount -t tmpfs -o mode=0755 tmpfs /mnt/upper
mkdir -p /mnt/upper/data /mnt/upper/work
mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/upper/data,workdir=/mnt/upper/work overlay /mnt/root || stop "error: cannot mount the overlay"
mount -t proc proc /mnt/root/proc
mount -t sysfs sysfs /mnt/root/sys
mount -t devtmpfs devtmpfs /mnt/root/dev
mkdir -p /mnt/root/dev/shm && mount -t tmpfs tmpfs /mnt/root/dev/shm
mkdir -p /mnt/root${GUEST_CONTROL_DIR} && mount -o bind /mnt/ctl /mnt/root${GUEST_CONTROL_DIR}
if [ -s /mnt/ctl/${CONTROL_FILES.outPath} ]; then
  out=$(cat /mnt/ctl/${CONTROL_FILES.outPath})
  mkdir -p "/mnt/root$out" && mount -t 9p -o ${NINEP} ${MOUNT_TAG.output} "/mnt/root$out" || stop "error: cannot mount the output share at $out"
fi
say "cpu $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)"
if [ -c /dev/kvm ]; then
  say "kvm yes"
else
  say "kvm no"
  dmesg | grep -i -E 'kvm|svm' | while read -r l; do say "dmesg: $l"; done
fi
stty -F /dev/ttyS1 raw -echo
stty -F /dev/ttyS2 raw -echo
# the command writes into pipes, as under a non-interactive caller; cat copies them to the ports
mkdir -p /run && mkfifo /run/stdout /run/stderr
cat /run/stdout >/dev/ttyS1 &
out_pid=$!
cat /run/stderr >/dev/ttyS2 &
err_pid=$!
say "ready $(up)"
chroot /mnt/root /bin/sh ${GUEST_CONTROL_DIR}/${CONTROL_FILES.script} </dev/null >/run/stdout 2>/run/stderr
code=$?
wait $out_pid $err_pid
echo $code > /mnt/ctl/${CONTROL_FILES.exitCode}
sync
stop "exit $code $(up)"
`;
}

/** Single-quotes a word for sh. */
export const shellQuote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** Environment variables that describe the host's shell, not the command's environment. */
const SKIP_ENV = new Set(["_", "PWD", "OLDPWD", "SHLVL"]);

/**
 * The script the guest runs in the chroot: the same working directory and environment as the
 * caller's, then exec of the command (sh reports a missing command and exits 127).
 */
export function commandScript(cwd: string, argv: readonly string[], env: Readonly<Record<string, string | undefined>>): string {
  const lines = ["# written by kvmx lab exec", `cd ${shellQuote(cwd)} || exit 127`];
  for (const [k, v] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (v === undefined || SKIP_ENV.has(k) || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) continue;
    lines.push(`export ${k}=${shellQuote(v)}`);
  }
  lines.push(`exec ${argv.map(shellQuote).join(" ")}`);
  return lines.join("\n") + "\n";
}
