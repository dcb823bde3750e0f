import { cpuProfile, initXsaveImage, KVM_XSAVE_SIZE, type XsaveImage } from "../../src/index.js";

/**
 * The recipe of fixtures/spr-kvm-get-xsave.bin: a synthetic image shaped like KVM_GET_XSAVE on this
 * machine's class (docs/facts.md#kvm-get-xsave, docs/facts.md#kvm-pvm-host): 4096 bytes, standard format, XSTATE_BV = 0xe7 (every component of
 * XCR0 0xe7 in use), XCOMP_BV and reserved header bytes 0, init FCW/MXCSR, patterned register contents,
 * zero gaps (MPX's 960..1087 and everything past 2688).
 */
export function sprFixture(): XsaveImage {
  const pvm = cpuProfile("kvm-pvm");
  const img = initXsaveImage(pvm, { size: KVM_XSAVE_SIZE, features: 0xe7n });
  img.xstateBv = 0xe7n;
  img.fsw = 0x3800; // TOP = 7: one value pushed
  img.ftw = 0x80; // abridged tag: ST7 physical register valid
  img.fop = 0x05d9;
  img.fip = 0x401000n;
  img.fdp = 0x7ffe_0000_1000n;
  img.st(0).set([0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]); // 1.0 as an 80-bit extended value
  for (let k = 0; k < 16; k++) img.xmm(k).fill(0x10 + k);
  for (const c of img.components()) {
    if (c.index < 2) continue;
    for (let i = 0; i < c.size; i++) c.bytes[i] = (c.index * 31 + i * 7) & 0xff;
  }
  return img;
}
