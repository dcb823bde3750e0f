import type { Kvm, KvmCpuidEntry2 } from "../api.js";
import { KVM_CAP, type KvmCapName } from "../caps.js";
import { KvmError } from "../errors.js";

/** What `kvmx probe` reports about a KVM: API version, capability values, supported XCR0 and CPUID. */
export interface KvmProbe {
  apiVersion: number;
  /** KVM_CHECK_EXTENSION per capability; XSAVE2 is asked on a VM fd, as the uAPI documents. */
  caps: Record<KvmCapName, number>;
  /** KVM_GET_SUPPORTED_CPUID leaf 0xD.0 EDX:EAX: the XCR0 bits KVM lets a guest enable. */
  supportedXcr0: bigint;
  cpuid: KvmCpuidEntry2[];
}

export function probeKvm(kvm: Kvm): KvmProbe {
  const apiVersion = kvm.apiVersion();
  const caps = {} as Record<KvmCapName, number>;
  for (const name of Object.keys(KVM_CAP) as KvmCapName[]) caps[name] = kvm.checkExtension(name);
  const vm = kvm.createVm();
  try {
    caps.XSAVE2 = vm.checkExtension("XSAVE2");
  } catch (err) {
    // a kernel without the capability answers 0 on the system fd already; EINVAL here means the same
    if (!(err instanceof KvmError && err.errnoName === "EINVAL")) throw err;
  } finally {
    vm.close();
  }
  const cpuid = kvm.getSupportedCpuid();
  const leafD = cpuid.find((e) => e.function === 0xd && e.index === 0);
  const supportedXcr0 = leafD ? (BigInt(leafD.edx) << 32n) | BigInt(leafD.eax) : 0n;
  return { apiVersion, caps, supportedXcr0, cpuid };
}
