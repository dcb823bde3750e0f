import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InputError } from "@kvmx/core";
import { UapiDecodeError } from "../src/errors.js";
import { decodeStruct } from "../src/structs/codec.js";
import { decodeKvmCpuid2, decodeKvmMsrs, decodeKvmXsave } from "../src/structs/flexible.js";
import { decodeKvmExit } from "../src/structs/kvm-run.js";
import { decodeKvmXcrs } from "../src/structs/kvm-xcrs.js";
import { KVM_STRUCTS, type StructName } from "../src/structs/layout.js";
import { seededBytes } from "../../../test/support/seeded-bytes.js";

/** Every decoder of the package, each taking arbitrary bytes. */
const decoders: [string, (b: Uint8Array) => unknown][] = [
  ...(Object.keys(KVM_STRUCTS) as StructName[]).map((n) => [n, (b: Uint8Array) => decodeStruct(n, b)] as [string, (b: Uint8Array) => unknown]),
  ["decodeKvmCpuid2", decodeKvmCpuid2],
  ["decodeKvmMsrs", (b) => decodeKvmMsrs(b)],
  ["decodeKvmXsave", (b) => decodeKvmXsave(b)],
  ["decodeKvmXsave(size from bytes)", (b) => decodeKvmXsave(b, b.byteLength)],
  ["decodeKvmXcrs", decodeKvmXcrs],
  ["decodeKvmExit", decodeKvmExit],
];

/** Lengths near every struct size, so both the truncated and the complete paths are hit. */
const interesting = [...new Set(Object.values(KVM_STRUCTS).flatMap((s) => [s.size - 1, s.size, s.size + 40]))];
const length = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(...interesting), fc.integer({ min: 0, max: 5000 }));

/**
 * Random bytes, with the counts that matter (nent, nmsrs, nr_xcrs, exit_reason, io fields) often small
 * so the decoders get past their length checks.
 */
const buffer = fc.tuple(seededBytes(length), fc.boolean(), fc.integer({ min: 0, max: 40 })).map(([b, small, n]) => {
  if (small && b.byteLength >= 16) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    dv.setUint32(0, n, true);
    dv.setUint32(8, n % 18, true); // kvm_run.exit_reason: a known reason
  }
  return b;
});

const RUNS = 100_000;

describe("decoders under random input", () => {
  it(`${RUNS} random buffers, each through every decoder: a value or a typed error, never anything else`, () => {
    const typed = new Map<string, number>();
    const decoded = new Map<string, number>();
    const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
    // Most decoder calls here throw, and capturing a stack trace for each is most of the loop's cost:
    // none while fuzzing; a failure names the decoder and the error, and the seed replays it.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      fc.assert(
        fc.property(buffer, (b) => {
          for (const [name, decode] of decoders) {
            try {
              decode(b);
              bump(decoded, name);
            } catch (err) {
              // Plain checks, not expect(): this loop runs millions of times.
              if (!(err instanceof UapiDecodeError) || !(err instanceof InputError)) {
                throw new Error(`${name} threw something other than a UapiDecodeError: ${String(err)}`, { cause: err });
              }
              bump(typed, name);
            }
          }
        }),
        { numRuns: RUNS, seed: 0x6b766d78 },
      );
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    // every decoder must both succeed and reject somewhere, or the fuzzer is not reaching it
    for (const [name] of decoders) {
      expect(decoded.get(name) ?? 0, `${name} decoded`).toBeGreaterThan(0);
      expect(typed.get(name) ?? 0, `${name} rejected`).toBeGreaterThan(0);
    }
  }, 300_000);
});
