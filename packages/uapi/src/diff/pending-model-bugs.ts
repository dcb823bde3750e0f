import type { PendingModelBug } from "./host-quirks.js";

const PKRU = 0x200n;
const u64 = (s: string | undefined): bigint | undefined => (s !== undefined && /^0x[0-9a-f]+$/.test(s) ? BigInt(s) : undefined);

/**
 * Model bugs the lab found in code this package does not own (core's vCPU operations), each named
 * with the kernel function the model gets wrong and where the fix belongs. A difference one of them
 * explains is reported as a model bug awaiting its fix — never as a host quirk — and the transcript
 * replay tests assert each is still observed, so an entry goes away with its fix.
 */
export const PENDING_MODEL_BUGS: readonly PendingModelBug[] = [
  {
    name: "get-xsave-pkru-always-present",
    differs:
      "KVM_GET_XSAVE/XSAVE2 set XSTATE_BV[9] (PKRU) whenever the guest may use PKRU; the kernel copies the bit from the fpstate header, which a fresh vCPU does not have until KVM_SET_XSAVE sets it (or the fpstate is saved with PKRU in use)",
    kernelFunction: "__copy_xstate_to_uabi_buf (header.xfeatures = the fpstate header's xfeatures & user_xfeatures & guest-supported)",
    fixIn: "packages/core/src/kvm/uapi-ops.ts (kvmGetXsave)",
    explains: (c) => {
      if ((c.step.kind !== "get-xsave" && c.step.kind !== "get-xsave2") || !c.key.endsWith(".xstate_bv")) return false;
      const m = u64(c.model);
      const k = u64(c.kernel);
      // exactly the PKRU bit, set by the model only
      return m !== undefined && k !== undefined && (k & PKRU) === 0n && m === (k | PKRU);
    },
  },
];
