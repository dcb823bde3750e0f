/**
 * The invariants (explorable.ts INVARIANTS) as named monitors. Each is evaluated where its
 * facts change, on every step that can break it, and reports through `ctx.violate` with the step:
 *
 *  no-host-ud        every host instruction runs through the executor (RunCtx.hostExec): a #UD is reported there
 *  apxf-c-needs-apx  sites.ts applyCRule on every C site, and the NMI handler entry (run-context.ts)
 *  guest-integrity   checkGuestView at every guest entry, and every explicit guest read
 *  no-leak           the same places, by provenance tag; and every uAPI image (checkUapiXsave)
 *  host-integrity    at user:return of every KVM_RUN (the VMM's own R16–R31)
 *  uapi-truth        every KVM_GET_XSAVE/GET_REGS, and SET-then-GET after every KVM_SET_XSAVE and migration
 *  cache-coherence   after every step (avail=0/dirty=1), every KVM read on the guest's behalf (stale
 *                    read), every guest entry (dirty registers written back, RIP resumed correctly)
 *  confidential      design actions and kvm_load_xfeatures on protected vCPUs; backends add their own
 *  host-xstate       every host XSAVE/XRSTOR (RunCtx.hostRun: a #GP or #NM there), and user:return (XCR0, PKRU)
 *  guest-state       the guest programs that read PKRU, DR6 or CR3 (feature-events.ts)
 *  uninit-read       RunCtx.cacheReg, before the vendor's cache_reg runs
 */
import { GPR_NAMES } from "../cpu/gpr.js";
import { isHostTag, type ProvenanceTag } from "../cpu/provenance.js";
import { XFEATURE_MASK } from "../cpu/xfeatures.js";
import type { XsaveImage } from "../cpu/xsave-image.js";
import { INVARIANTS, type InvariantName } from "./explorable.js";
import type { RunCtx } from "./run-context.js";
import { vcpuGuestSupportedXcr0 } from "./xcr.js";
import type { XsaveView } from "./uapi-ops.js";
import { val } from "../cpu/values.js";
export { checkGuestView } from "./sites.js";

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Where each monitor runs (for docs and `kvmx run --explain`). */
export const MONITORS: Record<InvariantName, { explanation: string; evaluatedAt: string }> = {
  "no-host-ud": { explanation: INVARIANTS["no-host-ud"], evaluatedAt: "every host instruction (executor fault #UD)" },
  "apxf-c-needs-apx": { explanation: INVARIANTS["apxf-c-needs-apx"], evaluatedAt: "every C site and NMI handler entry in a -mapxf host" },
  "guest-integrity": { explanation: INVARIANTS["guest-integrity"], evaluatedAt: "every guest entry and guest read" },
  "no-leak": { explanation: INVARIANTS["no-leak"], evaluatedAt: "every guest entry, guest read and uAPI XSAVE image" },
  "host-integrity": { explanation: INVARIANTS["host-integrity"], evaluatedAt: "the return of every KVM_RUN" },
  "uapi-truth": { explanation: INVARIANTS["uapi-truth"], evaluatedAt: "every KVM_GET_XSAVE/GET_REGS, SET-then-GET, migration" },
  "cache-coherence": { explanation: INVARIANTS["cache-coherence"], evaluatedAt: "every step; every KVM read of a guest register; every guest entry" },
  confidential: { explanation: INVARIANTS.confidential, evaluatedAt: "design actions and XCR0 loads on protected vCPUs" },
  "host-xstate": { explanation: INVARIANTS["host-xstate"], evaluatedAt: "every host XSAVE/XRSTOR (a #GP or #NM) and the return of every KVM_RUN" },
  "guest-state": { explanation: INVARIANTS["guest-state"], evaluatedAt: "every guest read of PKRU (RDPKRU, XSAVE), DR6 and CR3" },
  "uninit-read": { explanation: INVARIANTS["uninit-read"], evaluatedAt: "every cache_reg" },
};

/**
 * uapi-truth and no-leak on a KVM_GET_XSAVE image: component 19 equals the guest's architectural
 * R16–R31 (when the guest may use APX at all), and carries no host value.
 */
/** checkUapiXsave on KVM_GET_XSAVE's view (uapi-ops.ts XsaveView) instead of its bytes: the checker's path. */
export function checkUapiXsaveView(ctx: RunCtx, view: XsaveView): void {
  const supported = vcpuGuestSupportedXcr0(ctx.vcpu, ctx.supportedXcr0);
  if ((supported & XFEATURE_MASK.APX) === 0n) return;
  const e = view.egpr;
  const expected = ctx.st.expected;
  for (let k = 0; k < 16; k++) {
    const got = e ? e.ids[k]! : 0;
    if (e && isHostTag(e.tags[k] ?? 0)) {
      ctx.violate("no-leak", `KVM_GET_XSAVE component 19 reports a host value in ${GPR_NAMES[16 + k]} (${hex(val(got))})`);
      return;
    }
    if (got !== expected.id(16 + k)) {
      ctx.violate("uapi-truth", `KVM_GET_XSAVE component 19 has ${GPR_NAMES[16 + k]} = ${hex(val(got))}${e ? "" : " (XSTATE_BV[19]=0)"}, the guest's value is ${hex(expected.get(16 + k))}`);
      return;
    }
  }
}

export function checkUapiXsave(ctx: RunCtx, image: XsaveImage, tags: readonly ProvenanceTag[]): void {
  const supported = vcpuGuestSupportedXcr0(ctx.vcpu, ctx.supportedXcr0);
  if ((supported & XFEATURE_MASK.APX) === 0n) return;
  const present = (image.xstateBv & XFEATURE_MASK.APX) !== 0n;
  const regs = image.apxRegisters() ?? [];
  for (let k = 0; k < 16; k++) {
    const got = present ? (regs[k] ?? 0n) : 0n;
    const want = ctx.st.expected.get(16 + k);
    if (present && isHostTag(tags[k] ?? 0)) {
      ctx.violate("no-leak", `KVM_GET_XSAVE component 19 reports a host value in ${GPR_NAMES[16 + k]} (${hex(got)})`);
      return;
    }
    if (got !== want) {
      ctx.violate("uapi-truth", `KVM_GET_XSAVE component 19 has ${GPR_NAMES[16 + k]} = ${hex(got)}${present ? "" : " (XSTATE_BV[19]=0)"}, the guest's value is ${hex(want)}`);
      return;
    }
  }
}
