import { existsSync } from "node:fs";
import { cpuidLookup, cpuProfile, profileFromCpuid } from "@kvmx/core";
import { describe, expect, it } from "vitest";
import { kvmUnavailableReason, openKvm } from "../src/host/kvm.js";

/**
 * Core's `kvm-pvm` profile claims to be the KVM of kvmx's development machines (docs/facts.md). Where
 * /dev/kvm opens on such a machine, hold it to that: supported XCR0 and every leaf 0xD sub-leaf must
 * equal KVM_GET_SUPPORTED_CPUID's. Elsewhere (another host, or `kvmx lab`'s QEMU guest) it skips.
 * Leaf 1 is not compared: kvm_pvm's supported CPUID leaf 1 lacks XSAVE/AVX (a named host quirk).
 */
const unavailable = kvmUnavailableReason();
const notPvm = unavailable === undefined && !existsSync("/sys/module/kvm_pvm") ? "this host's KVM is not kvm_pvm" : undefined;
const reason = unavailable ?? notPvm;
if (reason) console.warn(`kvm-pvm profile vs KVM_GET_SUPPORTED_CPUID skipped: ${reason}`);

describe.skipIf(reason !== undefined)("the kvm-pvm CPU profile matches this machine's KVM", () => {
  it("supported XCR0 and leaf 0xD", () => {
    const kvm = openKvm();
    try {
      const real = kvm.getSupportedCpuid();
      const pvm = cpuProfile("kvm-pvm");
      const host = profileFromCpuid(real, { name: "host" });
      expect(`0x${host.supportedXcr0.toString(16)}`).toBe(`0x${pvm.supportedXcr0.toString(16)}`);
      expect(host.maxStandardSize).toBe(pvm.maxStandardSize);
      for (let sub = 0; sub < 64; sub++) {
        const want = cpuidLookup(pvm.cpuid, 0xd, sub);
        const got = cpuidLookup(real, 0xd, sub);
        if (sub === 0) {
          // EBX depends on the XCR0 currently enabled, so compare EAX/EDX (supported bits) and ECX (max size)
          expect({ eax: got.eax, ecx: got.ecx, edx: got.edx }, "0xD.0").toEqual({ eax: want.eax, ecx: want.ecx, edx: want.edx });
        } else if (sub >= 2) {
          expect({ eax: got.eax, ebx: got.ebx }, `0xD.${sub} size/offset`).toEqual({ eax: want.eax, ebx: want.ebx });
        }
      }
    } finally {
      kvm.close();
    }
  });
});
