import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fc, test } from "@fast-check/vitest";
import { vmxBackend } from "@kvmx/vmx";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kvm, Vcpu } from "../src/api.js";
import { diffKernels } from "../src/diff/diff-kernels.js";
import { xsaveImageFor } from "../src/diff/observe.js";
import { parseRealScenario } from "../src/diff/real-scenario.js";
import { KvmError } from "../src/errors.js";
import { kvmUnavailableReason, openKvm } from "../src/host/kvm.js";
import { ModelKvm } from "../src/model/model-kvm.js";
import { writeImmediateExit } from "../src/structs/kvm-run.js";
import { arbitraryStruct } from "./struct-arbitrary.js";

/**
 * Model = real KVM, as properties: generated XCR0 values, XSAVE headers/images and register sets go
 * to both kernels, which must agree on accept/reject (errno) and on what reads back. Also every file
 * of scenarios/real must show no unexplained difference. Needs /dev/kvm: here it skips and says why.
 */
const reason = kvmUnavailableReason();
if (reason) console.warn(`model-vs-real differential tests skipped: ${reason}`);

describe.skipIf(reason !== undefined)("model = real /dev/kvm", () => {
  let real: Kvm;
  const model = new ModelKvm({ backend: vmxBackend, cpu: "kvm-pvm" });
  beforeAll(() => {
    real = openKvm();
  });
  afterAll(() => real?.close());

  /** Runs `f` on a fresh vCPU (with the kernel's supported CPUID) of each kernel; returns both results. */
  function both<T>(f: (kvm: Kvm, v: Vcpu) => T): [T, T] {
    const run = (kvm: Kvm): T => {
      const vm = kvm.createVm();
      try {
        const v = vm.createVcpu(0);
        v.setCpuid2(kvm.getSupportedCpuid());
        return f(kvm, v);
      } finally {
        vm.close();
      }
    };
    return [run(model), run(real)];
  }

  const errno = (f: () => void): string => {
    try {
      f();
      return "ok";
    } catch (err) {
      if (err instanceof KvmError) return err.errnoName;
      throw err;
    }
  };

  test.prop([fc.oneof(fc.integer({ min: 0, max: 0x3ff }).map(BigInt), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }))], { numRuns: 200 })(
    "KVM_SET_XCRS: same errno, same XCR0 read back",
    (x) => {
      const [m, r] = both((_k, v) => [errno(() => v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: x }] })), v.getXcrs()]);
      expect(m).toEqual(r);
    },
  );

  test.prop(
    [
      fc.oneof(fc.integer({ min: 0, max: 0x3ff }).map(BigInt), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
      fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: (1n << 64n) - 1n })),
      fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })),
      fc.oneof(fc.constant(0x1f80), fc.integer({ min: 0, max: 0xffff_ffff })),
      fc.uint8Array({ minLength: 256, maxLength: 256 }),
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
    ],
    { numRuns: 200 },
  )("KVM_SET_XSAVE images: same errno, same KVM_GET_XSAVE bytes after", (xstateBv, xcompBv, reservedByte, mxcsr, ymm, opmask) => {
    const [m, r] = both((_k, v) => {
      v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: 0xe7n }] });
      const patch = [{ offset: 576, bytes: ymm }, { offset: 1088, bytes: opmask }];
      const e = errno(() => v.setXsave(xsaveImageFor({ xstateBv, xcompBv, reservedByte, mxcsr, patch }, 960)));
      return [e, Buffer.from(v.getXsave()).toString("hex")];
    });
    expect(m).toEqual(r);
  });

  test.prop([arbitraryStruct("kvm_regs")], { numRuns: 100 })("KVM_SET_REGS then KVM_GET_REGS: same read-back", (regs) => {
    const [m, r] = both((_k, v) => {
      v.setRegs(regs);
      return v.getRegs();
    });
    expect(m).toEqual(r);
  });

  test.prop([fc.bigInt({ min: 0n, max: 0x1fn }), fc.bigInt({ min: 0n, max: 0x1fn }), arbitraryStruct("kvm_regs")], { numRuns: 50 })(
    "KVM_RUN with sync regs: same errno for any valid/dirty mask, same exit and s.regs",
    (valid, dirty, regs) => {
      const [m, r] = both((_k, v) => {
        v.setRegs(regs);
        v.syncRegs.write({ regs: v.getRegs(), sregs: v.getSregs(), events: v.getVcpuEvents() });
        v.syncRegs.valid = valid;
        v.syncRegs.dirty = dirty;
        // immediate_exit: the run returns before entering the guest, so no program is needed
        writeImmediateExit((v as unknown as { kvmRun: Uint8Array }).kvmRun, 1);
        const e = errno(() => v.run());
        return [e, valid & 1n && e === "ok" ? v.syncRegs.read().regs : undefined];
      });
      expect(m).toEqual(r);
    },
  );

  const dir = fileURLToPath(new URL("../../../scenarios/real/", import.meta.url));
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".yaml"))) {
    it(`scenarios/real/${f}: no unexplained difference`, () => {
      const s = parseRealScenario(readFileSync(dir + f, "utf8"), f);
      const m = new ModelKvm({ backend: vmxBackend, cpu: s.model.cpu, design: s.model.design, options: s.model.options });
      const report = diffKernels(s, { name: "model", kvm: m }, { name: "kvm", kvm: real }, m.cfg.profile);
      expect(report.differences.filter((d) => !d.quirk)).toEqual([]);
    });
  }
});
