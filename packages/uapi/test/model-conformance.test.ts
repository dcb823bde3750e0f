import { vmxBackend } from "@kvmx/vmx";
import { ModelKvm } from "../src/model/model-kvm.js";
import { kvmConformance } from "./api-conformance.js";

/**
 * The simulated /dev/kvm (pvm profile, VMX backend) against the same conformance suite the real
 * binding runs: one API, two kernels, one set of expectations (docs/facts.md#xsave-uapi, docs/facts.md#kvm-pvm-host).
 */
kvmConformance("simulated /dev/kvm (kvm-pvm, vmx)", () => new ModelKvm({ backend: vmxBackend, cpu: "kvm-pvm" }), undefined);
