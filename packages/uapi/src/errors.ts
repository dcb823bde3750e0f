import { InputError, KvmxError, type ErrorCategory } from "@kvmx/core";
import { errnoName } from "./errno.js";

/** A buffer that cannot be a given kvm.h struct: too short, or a count that does not fit. */
export class UapiDecodeError extends InputError {
  constructor(
    readonly struct: string,
    message: string,
  ) {
    super(`${struct}: ${message}`);
  }
}

/** A JS value that cannot be encoded into a kvm.h struct field (wrong type, out of range, wrong length). */
export class UapiEncodeError extends InputError {
  constructor(
    readonly struct: string,
    message: string,
  ) {
    super(`${struct}: ${message}`);
  }
}

/** errno values for which opening /dev/kvm means "no usable KVM here" rather than a kvmx bug. */
const UNAVAILABLE_ON_OPEN = new Set(["ENOENT", "ENODEV", "EACCES", "EPERM", "ENXIO"]);

/**
 * A failed system call on a KVM file descriptor, carrying the errno by name and number.
 * Category: "unavailable" when /dev/kvm cannot be opened (missing, no driver, no permission);
 * "bad-input" when the kernel rejected caller-supplied contents (EINVAL, E2BIG on a SET-type ioctl,
 * which is how KVM reports an invalid XCR0, XSAVE header or CPUID table); "internal" otherwise.
 */
export class KvmError extends KvmxError {
  readonly errnoName: string;
  constructor(
    readonly operation: string,
    readonly errno: number,
    category: ErrorCategory,
  ) {
    const name = errnoName(errno);
    super(`${operation}: ${name} (errno ${errno})`, category);
    // bundlers rename classes with static members (esbuild: _KvmError); keep the public name stable
    this.name = "KvmError";
    this.errnoName = name;
  }

  /** The error for a failed open of the KVM device node. */
  static fromOpen(path: string, errno: number): KvmError {
    const category = UNAVAILABLE_ON_OPEN.has(errnoName(errno)) ? "unavailable" : "internal";
    return new KvmError(`open ${path}`, errno, category);
  }

  /** The error for a failed ioctl; `writesCallerData` marks SET-type ioctls whose EINVAL means bad input. */
  static fromIoctl(ioctlName: string, errno: number, writesCallerData: boolean): KvmError {
    const name = errnoName(errno);
    const category: ErrorCategory =
      writesCallerData && (name === "EINVAL" || name === "E2BIG") ? "bad-input" : "internal";
    return new KvmError(ioctlName, errno, category);
  }
}
