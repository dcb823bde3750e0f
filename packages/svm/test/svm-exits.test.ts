import { describe, expect, test } from "vitest";
import { fc } from "@fast-check/vitest";
import { BUILTIN_DESIGNS, createMachine, type KvmxEvent, type Machine } from "@kvmx/core";
import { sevEsBackend, svmApxBackend, svmBackend, svmIntercepts } from "../src/index.js";

/** Random walks over the machine's own event alphabet (what the checker explores). */
function walk(m: Machine, picks: readonly number[]): void {
  let s = m.initialState();
  for (const p of picks) {
    const evs: readonly KvmxEvent[] = m.events(s);
    s = m.apply(s, evs[p % evs.length]!).state;
  }
}

describe("the exit handlers never throw on the checker's alphabet", () => {
  for (const backend of [svmBackend, svmApxBackend, sevEsBackend]) {
    for (const cpu of ["spr", "dmr", "zen"]) {
      test(`${backend.name} on ${cpu}: every design, PRE and POST, -mapxf or not, guest APX or not`, () => {
        for (const d of BUILTIN_DESIGNS) {
          for (const pre of [false, true]) {
            for (const kernelApx of [false, true]) {
              const m = createMachine({ backend, design: d.name, host: { cpu, kernelApx }, guest: { apx: true }, pre, alphabet: { migrateTo: ["fpstate", "asm-conditional"] } });
              fc.assert(fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), (picks) => walk(m, picks)), { numRuns: 4 });
            }
          }
        }
      });
    }
  }

  test("intercepts: XSETBV, CPUID, HLT, OUT and the MSR forms exit on SVM; SEV-ES runs XSETBV natively", () => {
    const v = createMachine({ backend: svmBackend, design: "fpstate", host: { cpu: "zen", kernelApx: false }, guest: { apx: false } }).initialState().vcpus[0]!;
    expect(svmIntercepts(v, { op: "xsetbv" })).toBe(true);
    expect(svmIntercepts(v, { op: "mov-r64-imm64", dst: 0, imm: 1n })).toBe(false);
    expect(sevEsBackend.intercepts(v, { op: "xsetbv" })).toBe(false);
    expect(sevEsBackend.intercepts(v, { op: "cpuid" })).toBe(true);
  });
});
