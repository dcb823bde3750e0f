import { describe, test } from "vitest";
import { fc } from "@fast-check/vitest";
import { BUILTIN_DESIGNS, createMachine, type KvmxEvent, type Machine } from "@kvmx/core";
import { tdxBackend, vmxNestedBackend } from "../src/index.js";

/** Random walks over the machine's own event alphabet (vendor events included), as the checker explores. */
function walk(m: Machine, picks: readonly number[]): void {
  let s = m.initialState();
  for (const p of picks) {
    const evs: readonly KvmxEvent[] = m.events(s);
    s = m.apply(s, evs[p % evs.length]!).state;
  }
}

describe("tdx and vmx-nested sites never throw on the checker's alphabet", () => {
  for (const backend of [tdxBackend, vmxNestedBackend]) {
    for (const cpu of ["spr", "dmr"]) {
      test(`${backend.name} on ${cpu}: every design, PRE and POST, -mapxf or not, guest APX or not`, () => {
        for (const d of BUILTIN_DESIGNS) {
          for (const pre of [false, true]) {
            for (const [kernelApx, apx] of [[false, true], [true, false], [true, true]] as const) {
              const m = createMachine({ backend, design: d.name, host: { cpu, kernelApx }, guest: { apx }, pre, alphabet: { migrateTo: ["fpstate", "asm-conditional"] } });
              fc.assert(fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), (picks) => walk(m, picks)), { numRuns: 3 });
            }
          }
        }
      });
    }
  }
});
