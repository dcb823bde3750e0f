import koffi from "koffi";

/**
 * The few libc calls the real binding needs, through koffi. ioctl is variadic in C; it is declared
 * once per argument kind (none, integer, pointer) with a fixed prototype, which is how a C caller's
 * registers look for each kind on x86-64 (SysV: the third argument in RDX either way).
 */
export interface Libc {
  open(path: string, flags: number, mode: number): number;
  close(fd: number): number;
  ioctlInt(fd: number, request: number, arg: number): number;
  ioctlPtr(fd: number, request: number, arg: Uint8Array): number;
  mmap(addr: null, length: number, prot: number, flags: number, fd: number, offset: number): bigint;
  munmap(addr: bigint, length: number): number;
  /** errno of the last failed call on this thread */
  errno(): number;
  /** An ArrayBuffer over `length` bytes of native memory at `addr` (no copy). */
  view(addr: bigint, length: number): ArrayBuffer;
}

export const O_RDWR = 0o2;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
/** (void *)-1 */
export const MAP_FAILED = (1n << 64n) - 1n;

let cached: Libc | undefined;

/** Loads libc once; koffi throws a plain Error if it cannot, which callers turn into a KvmError. */
export function libc(): Libc {
  if (cached) return cached;
  const lib = koffi.load("libc.so.6");
  const open = lib.func("open", "int", ["str", "int", "uint32_t"]);
  const close = lib.func("close", "int", ["int"]);
  const ioctlInt = lib.func("ioctl", "int", ["int", "unsigned long", "unsigned long"]);
  const ioctlPtr = lib.func("ioctl", "int", ["int", "unsigned long", "void *"]);
  const mmap = lib.func("mmap", "void *", ["void *", "size_t", "int", "int", "int", "int64_t"]);
  const munmap = lib.func("munmap", "int", ["void *", "size_t"]);
  cached = {
    open: (p, f, m) => open(p, f, m) as number,
    close: (fd) => close(fd) as number,
    ioctlInt: (fd, req, arg) => ioctlInt(fd, req, arg) as number,
    ioctlPtr: (fd, req, arg) => ioctlPtr(fd, req, arg) as number,
    mmap: (a, len, prot, flags, fd, off) => toAddress(mmap(a, len, prot, flags, fd, off)),
    munmap: (addr, len) => munmap(addr, len) as number,
    errno: () => koffi.errno(),
    view: (addr, len) => koffi.view(addr, len),
  };
  return cached;
}

function toAddress(p: unknown): bigint {
  if (typeof p === "bigint") return p;
  if (p === null) return 0n;
  return koffi.address(p);
}
