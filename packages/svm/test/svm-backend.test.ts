import { describe, expect } from "vitest";
import { fc, test } from "@fast-check/vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { XFEATURE_MASK, XFEATURE_MASK_MPX, createMachine, parseScenario, runScenario } from "@kvmx/core";
import { createSvmBackend, svmApxBackend, svmBackend, svmSupportedXcr0 } from "../src/index.js";

describe("SVM supported XCR0 (docs/facts.md#svm-apx, docs/facts.md#supported-xcr0: SVM removes MPX and APX)", () => {
  test.prop([fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })])("masked: never APX or MPX, never a bit the host lacks", (host) => {
    const s = svmSupportedXcr0(host, "masked");
    expect(s & (XFEATURE_MASK.APX | XFEATURE_MASK_MPX)).toBe(0n);
    expect(s & ~host).toBe(0n);
    expect(s).toBe(host & ~(XFEATURE_MASK.APX | XFEATURE_MASK_MPX));
  });

  test.prop([fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })])("hypothetical: APX kept, MPX still removed", (host) => {
    const s = svmSupportedXcr0(host, "hypothetical");
    expect(s & XFEATURE_MASK.APX).toBe(host & XFEATURE_MASK.APX);
    expect(s & XFEATURE_MASK_MPX).toBe(0n);
  });

  test("an APX host cannot give an SVM guest APX (config and guest CPUID), unless the hypothetical switch is on", () => {
    const masked = createMachine({ backend: svmBackend, design: "asm-conditional", host: { cpu: "dmr", kernelApx: false }, guest: { apx: true } });
    expect(masked.config.guestApx).toBe(false);
    expect(masked.config.supportedXcr0 & XFEATURE_MASK.APX).toBe(0n);
    const hypo = createMachine({ backend: svmApxBackend, design: "asm-conditional", host: { cpu: "dmr", kernelApx: false }, guest: { apx: true } });
    expect(hypo.config.guestApx).toBe(true);
    expect(svmApxBackend.name).toBe("svm-apx");
    expect(svmApxBackend.description).toMatch(/HYPOTHETICAL/);
  });

  test("backend shape: KVM switches XCR0 itself, no protected state, PDPTR is the only lazy register", () => {
    const m = createMachine({ backend: svmBackend, design: "asm-conditional", host: { cpu: "zen", kernelApx: false }, guest: { apx: false } });
    const l = m.initialState().vcpus[0]!.layout;
    expect(svmBackend.xfeatureSwitch).toBe("kvm");
    expect(svmBackend.hasProtectedState(m.initialState().vcpus[0]!)).toBe(false);
    expect(svmBackend.lazyAvailMask(l)).toBe(1n << BigInt(l.PDPTR));
    expect(createSvmBackend().name).toBe("svm");
  });
});

describe("scenarios/svm-guest-basic.yaml produces its documented outcome", () => {
  test("no violation; the XSETBV with APX is refused (#GP) because SVM masks APX", () => {
    const file = fileURLToPath(new URL("../../../scenarios/svm-guest-basic.yaml", import.meta.url));
    const sc = parseScenario(readFileSync(file, "utf8"), file, { backend: (n) => [svmBackend, svmApxBackend].find((b) => b.name === n) });
    const r = runScenario(sc);
    expect(r.expectationFailures).toEqual([]);
    expect(r.violations).toEqual([]);
    expect(r.ok).toBe(true);
    const xsetbvApx = r.events.find((e) => e.description === "guest-xsetbv value=0x80007")!;
    expect(xsetbvApx.steps.find((s) => s.site === "x86:handle-exit")!.description).toMatch(/#GP/);
  });
});
