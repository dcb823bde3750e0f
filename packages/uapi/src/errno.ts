/**
 * Linux errno numbers (x86-64, asm-generic/errno-base.h and errno.h) for the values KVM ioctls,
 * open and mmap return. Checked against <errno.h> in test/errno.test.ts.
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENOSYS: 38,
  ENODATA: 61,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  EHWPOISON: 133,
} as const;
export type ErrnoName = keyof typeof ERRNO;

const BY_NUMBER = new Map<number, string>(Object.entries(ERRNO).map(([k, v]) => [v, k]));

/** The symbolic name of an errno value, or "errno <n>" for one this table does not list. */
export function errnoName(errno: number): string {
  return BY_NUMBER.get(errno) ?? `errno ${errno}`;
}
