import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fc, test } from "@fast-check/vitest";
import type { VendorOps } from "@kvmx/core";
import { svmBackend } from "@kvmx/svm";
import { vmxBackend } from "@kvmx/vmx";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kvm, Vcpu } from "../src/api.js";
import { compareObservations } from "../src/diff/compare.js";
import { diffKernels } from "../src/diff/diff-kernels.js";
import { QUIRKS_BY_HOST_KIND } from "../src/diff/host-quirks.js";
import { hostModel } from "../src/diff/host-model.js";
import { xsaveImageFor, xsaveObs } from "../src/diff/observe.js";
import { pendingBugsFor } from "../src/diff/pending-model-bugs.js";
import { parseRealScenario } from "../src/diff/real-scenario.js";
import { kernelFacts, type KernelFacts } from "../src/diff/transcript.js";
import { describeHost, type HostDescription, type HostKind } from "../src/host/host-description.js";
import { KvmError } from "../src/errors.js";
import { kvmUnavailableReason, openKvm } from "../src/host/kvm.js";
import { ModelKvm } from "../src/model/model-kvm.js";
import { writeImmediateExit } from "../src/structs/kvm-run.js";
import { arbitraryStruct } from "./struct-arbitrary.js";

/**
 * Model = real KVM, as properties: generated XCR0 values, XSAVE headers/images and register sets go
 * to both kernels, which must agree on accept/reject (errno) and on what reads back. Also every file
 * of scenarios/real must show no unexplained difference. The model is configured from what this
 * kernel reports (hostModel), and differences are classified by this host kind's quirk table and the
 * known pending model bugs, as `kvmx diff` does. Needs /dev/kvm (`kvmx lab exec` gives one): without
 * it this skips and says why.
 */
const backendFor = (k: HostKind): VendorOps => (k === "kvm_amd" || k === "kvm_amd on an emulated CPU" ? svmBackend : vmxBackend);
const reason = kvmUnavailableReason();
if (reason) console.warn(`model-vs-real differential tests skipped: ${reason}`);

describe.skipIf(reason !== undefined)("model = real /dev/kvm", () => {
  let real: Kvm;
  let host: HostDescription;
  let facts: KernelFacts;
  let model: ModelKvm;
  const modelFor = (text: string, file: string) => {
    const s = parseRealScenario(text, file);
    const hm = hostModel(s, host, facts, backendFor(host.hostKind));
    return { s, hm, kvm: new ModelKvm(hm.config) };
  };
  beforeAll(() => {
    real = openKvm();
    host = describeHost();
    facts = kernelFacts(real);
    model = modelFor("steps: [get-regs]\n", "properties").kvm;
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
  )("KVM_SET_XSAVE images: same errno, same KVM_GET_XSAVE bytes after (but for named quirks and pending model bugs)", (xstateBv, xcompBv, reservedByte, mxcsr, ymm, opmask) => {
    const [m, r] = both((kvm, v) => {
      const supported = kvm.getDeviceAttr(0, 0n);
      v.setXcrs({ flags: 0, xcrs: [{ xcr: 0, reserved: 0, value: supported & 0x2e7n }] });
      const patch = [{ offset: 576, bytes: ymm }, { offset: 1088, bytes: opmask }];
      const e = errno(() => v.setXsave(xsaveImageFor({ xstateBv, xcompBv, reservedByte, mxcsr, patch }, 960)));
      const obs: Record<string, string> = { errno: e };
      xsaveObs(obs, v.getXsave(), model.cfg.profile);
      return obs;
    });
    const s = parseRealScenario("steps: [get-xsave]\n", "property");
    const report = compareObservations(s, { name: "model", obs: [{ index: 0, kind: "get-xsave", at: s.steps[0]!.at, obs: m }] }, { name: "kvm", obs: [{ index: 0, kind: "get-xsave", at: s.steps[0]!.at, obs: r }] }, QUIRKS_BY_HOST_KIND[host.hostKind], pendingBugsFor(host, facts));
    expect(report.differences.filter((d) => !d.quirk && !d.pendingBug)).toEqual([]);
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
      const { s, hm, kvm } = modelFor(readFileSync(dir + f, "utf8"), f);
      const report = diffKernels(s, { name: "model", kvm }, { name: "kvm", kvm: real }, hm.profile, QUIRKS_BY_HOST_KIND[host.hostKind], pendingBugsFor(host, facts));
      expect(report.differences.filter((d) => !d.quirk && !d.pendingBug)).toEqual([]);
    });
  }
});
