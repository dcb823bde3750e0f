import { insn, xsaveLayout, type CpuProfile, type SourceLocation } from "@kvmx/core";
import type { Kvm, KvmRegs, Vcpu, Vm } from "../api.js";
import { KvmError } from "../errors.js";
import { exitReasonName } from "../exit-reasons.js";
import { KVM_CAP } from "../caps.js";
import { KVM_XSAVE_REGION_SIZE } from "../structs/flexible.js";
import type { KvmExit } from "../structs/kvm-run.js";
import {
  cpuidLoopProgram,
  faultProgram,
  GUEST_MEMORY_SIZE,
  loadGuestProgram,
  longModeProgram,
  movProgram,
  xsetbvProgram,
  type GuestProgram,
} from "../guest/guest-program.js";
import { GUEST_REPORT_PORT, GUEST_VECTOR_PORT } from "../guest/long-mode.js";
import type { GuestMemory } from "../api.js";
import type { FieldSets, ProgramSpec, RealScenario, RealStep, XsaveSpec } from "./real-scenario.js";
import { flattenFields, setField } from "./struct-fields.js";
import { kvmCpuid2Size, type KvmCpuidEntry2 } from "../structs/flexible.js";

/**
 * Running a differential scenario on one kernel (real or model) and writing down everything
 * userspace can observe, step by step, as "key → text" pairs: errno names, register values, XCR0,
 * XSAVE regions, exits, fault vectors. Two runs are compared key by key (compare.ts).
 */
export interface StepObservation {
  readonly index: number;
  readonly kind: RealStep["kind"];
  readonly at: SourceLocation;
  readonly obs: Readonly<Record<string, string>>;
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
const bytesHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const GPR_INDEX: Readonly<Record<string, number>> = Object.fromEntries(
  ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "r16", "r17", "r18", "r19", "r20", "r21", "r22", "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30", "r31"].map((n, i) => [n, i]),
);

/** The guest program a step names (src/guest programs, so both kernels run the same bytes). */
export function programFor(spec: Exclude<ProgramSpec, { program: "real-mode" }>): GuestProgram {
  switch (spec.program) {
    case "xsetbv":
      return xsetbvProgram(spec.xcr0);
    case "xgetbv":
      // XGETBV(0) → EDX:EAX, reports AL (XCR0's low byte) and halts; at CPL 3 the OUT itself #GPs
      return longModeProgram((a) => a.insn(insn.movImm(1, 0n)).insn(insn.xgetbv()).insn(insn.outImm8(GUEST_REPORT_PORT)).insn(insn.hlt()), { cpl: spec.cpl });
    case "mov":
      return movProgram(new Map(Object.entries(spec.regs).map(([k, v]) => [GPR_INDEX[k]!, v])), { cpl: spec.cpl });
    case "fault":
      return faultProgram(spec.fault, { cpl: spec.cpl });
    case "cpuid-loop":
      return cpuidLoopProgram(spec.iterations);
    case "cpuid":
      // CPUID(leaf, subleaf) → EAX..EDX, report 5, halt
      return longModeProgram((a) =>
        a.insn(insn.movImm(0, BigInt(spec.leaf))).insn(insn.movImm(1, BigInt(spec.subleaf))).insn(insn.cpuid()).movAl(5).insn(insn.outImm8(GUEST_REPORT_PORT)).insn(insn.hlt()),
      );
  }
}

export function describeExit(e: KvmExit): string {
  switch (e.kind) {
    case "io":
      return `io ${e.direction} port=${hex(e.port)} size=${e.size} count=${e.count} data=${bytesHex(e.data)}`;
    case "internal-error":
      return `internal-error suberror=${e.suberror}`;
    case "exception":
      return `exception ${e.exception} error=${hex(e.errorCode)}`;
    default:
      return exitReasonName(e.exitReason).replace(/^KVM_EXIT_/, "").toLowerCase();
  }
}

function regsObs(out: Record<string, string>, prefix: string, r: KvmRegs): void {
  for (const [k, v] of Object.entries(r)) out[`${prefix}.${k}`] = hex(v);
}

/** XSAVE bytes as named regions: legacy fields, header, then every component of the profile's standard layout. */
export function xsaveObs(out: Record<string, string>, bytes: Uint8Array, profile: CpuProfile, prefix = "xsave"): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  out[`${prefix}.size`] = String(bytes.length);
  out[`${prefix}.x87`] = bytesHex(Uint8Array.from([...bytes.subarray(0, 24), ...bytes.subarray(32, 160)]));
  out[`${prefix}.mxcsr`] = hex(dv.getUint32(24, true));
  out[`${prefix}.mxcsr_mask`] = hex(dv.getUint32(28, true));
  out[`${prefix}.xmm`] = bytesHex(bytes.subarray(160, 416));
  // FXSAVE bytes 416..463 are padding; 464..511 are the software-reserved bytes Linux fills with its
  // fx_sw_bytes (FP_XSTATE_MAGIC1, sizes, xfeatures) in XSAVE-format uABI copies
  out[`${prefix}.fx-padding`] = bytesHex(bytes.subarray(416, 464));
  out[`${prefix}.fx-sw-reserved`] = bytesHex(bytes.subarray(464, 512));
  out[`${prefix}.xstate_bv`] = hex(dv.getBigUint64(512, true));
  out[`${prefix}.xcomp_bv`] = hex(dv.getBigUint64(520, true));
  out[`${prefix}.header-reserved`] = bytesHex(bytes.subarray(528, 576));
  const layout = xsaveLayout(profile, profile.supportedXcr0 & ~profile.supportedXss, "standard");
  let covered = 576;
  const gaps: string[] = [];
  for (const c of [...layout.components].filter((c) => c.index >= 2).sort((a, b) => a.offset - b.offset)) {
    if (c.offset + c.size > bytes.length) continue;
    if (c.offset > covered) gaps.push(`${covered}:${bytesHex(bytes.subarray(covered, c.offset))}`);
    if (c.index === 19) {
      const vals = Array.from({ length: 16 }, (_, k) => hex(dv.getBigUint64(c.offset + 8 * k, true)));
      out[`${prefix}.${c.name}`] = vals.join(",");
    } else {
      out[`${prefix}.${c.name}`] = bytesHex(bytes.subarray(c.offset, c.offset + c.size));
    }
    covered = Math.max(covered, c.offset + c.size);
  }
  if (covered < bytes.length) gaps.push(`${covered}:${bytesHex(bytes.subarray(covered))}`);
  // bytes no component of the profile covers (MPX/APX bytes on a profile without them, the tail)
  out[`${prefix}.other`] = gaps.map((g) => g.replace(/:(00)+$/, ":0")).join(" ");
}

/** A struct as read back, with a step's fields set on top. */
function applyFields<T>(value: T, fields: FieldSets): T {
  return fields.reduce((acc, f) => setField(acc, f.path, f.value), value);
}

/** Every entry of a CPUID table, one key per (leaf, index): "eax ebx ecx edx flags". */
function cpuidObs(out: Record<string, string>, prefix: string, entries: readonly KvmCpuidEntry2[]): void {
  out[`${prefix}.nent`] = String(entries.length);
  for (const e of entries) out[`${prefix}.${hex(e.function)}.${e.index}`] = `${[e.eax, e.ebx, e.ecx, e.edx].map((x) => hex(x >>> 0)).join(" ")} flags=${e.flags}`;
}

/**
 * A GET into a prefilled caller buffer: the errno, the header nent (kvm_cpuid2 buffers), and the
 * extent KVM wrote — one past the last byte that no longer holds the prefill value.
 */
function bufferObs(out: Record<string, string>, buf: Uint8Array, prefill: number, call: () => void): void {
  try {
    call();
    out.errno = "ok";
  } finally {
    let end = buf.length;
    while (end > 0 && buf[end - 1] === prefill) end--;
    out.extent = String(end);
    if (buf.length >= 4) out.nent = String(new DataView(buf.buffer, buf.byteOffset).getUint32(0, true));
  }
}

/** A zeroed standard image with the spec's header, MXCSR and R16..R31 at component 19's standard offset. */
export function xsaveImageFor(spec: XsaveSpec, apxOffset: number, size = KVM_XSAVE_REGION_SIZE): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, 0x37f, true);
  dv.setUint32(24, spec.mxcsr >>> 0, true);
  dv.setUint32(28, 0xffff, true);
  dv.setBigUint64(512, spec.xstateBv, true);
  dv.setBigUint64(520, spec.xcompBv, true);
  b[528] = spec.reservedByte;
  spec.apx?.forEach((v, k) => dv.setBigUint64(apxOffset + 8 * k, v, true));
  for (const p of spec.patch ?? []) b.set(p.bytes, p.offset);
  return b;
}

/** One VM, one vCPU, 2 MiB of guest memory: what every differential scenario runs on. */
interface Rig {
  vm: Vm;
  vcpu: Vcpu;
  mem: GuestMemory;
}

function setCpuid(kvm: Kvm, vcpu: Vcpu, xcr0Mask: bigint | undefined): void {
  const entries = kvm.getSupportedCpuid().map((e) => {
    if (xcr0Mask === undefined || e.function !== 0xd || e.index !== 0) return e;
    return { ...e, eax: Number(xcr0Mask & 0xffff_ffffn) >>> 0, edx: Number(xcr0Mask >> 32n) >>> 0 };
  });
  vcpu.setCpuid2(entries);
}

/**
 * A real-mode program: its code at 0x1000, its other bytes, IVT entries (segment 0) in the first KiB;
 * CS, DS, ES, SS = 0 (real-mode segments as the vCPU reports them), IP 0x1000, SP 0x7000.
 */
function loadRealMode(rig: Rig, spec: Extract<ProgramSpec, { program: "real-mode" }>): void {
  const { mem, vcpu } = rig;
  mem.bytes.fill(0, 0, 0x8000);
  mem.write(0x1000n, spec.code);
  for (const c of spec.at) mem.write(BigInt(c.gpa), c.bytes);
  for (const e of spec.ivt) mem.write(BigInt(e.vector * 4), Uint8Array.of(e.offset & 0xff, e.offset >> 8, 0, 0));
  const s = vcpu.getSregs();
  const zero = <T extends { selector: number; base: bigint }>(seg: T): T => ({ ...seg, selector: 0, base: 0n });
  vcpu.setSregs({ ...s, cr0: s.cr0 & ~1n, cs: zero(s.cs), ds: zero(s.ds), es: zero(s.es), ss: zero(s.ss), idt: { ...s.idt, base: 0n, limit: 0x3ff } });
  vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000n, rsp: 0x7000n, rflags: 2n });
}

function runProgram(rig: Rig, spec: ProgramSpec, maxExits: number, out: Record<string, string>): void {
  if (spec.program === "real-mode") loadRealMode(rig, spec);
  else loadGuestProgram(rig.vm, rig.vcpu, programFor(spec), rig.mem);
  for (let i = 0; i < maxExits; i++) {
    const e = rig.vcpu.run();
    out[`exit.${i}`] = describeExit(e);
    if (e.kind === "io" && e.port === GUEST_VECTOR_PORT) out["fault-vector"] = String(e.data[0]);
    if (e.kind !== "io") break;
  }
  regsObs(out, "regs", rig.vcpu.getRegs());
  out.xcr0 = hex(rig.vcpu.getXcrs().xcrs.find((x) => x.xcr === 0)?.value ?? 0n);
}

function step(kvm: Kvm, rig: Rig, s: RealStep, profile: CpuProfile, apxOffset: number, out: Record<string, string>): void {
  const v = rig.vcpu;
  switch (s.kind) {
    case "set-cpuid":
      setCpuid(kvm, v, s.xcr0Mask);
      out.errno = "ok";
      return;
    case "set-xcrs":
      v.setXcrs({ flags: s.flags, xcrs: [{ xcr: 0, reserved: 0, value: s.xcr0 }] });
      out.errno = "ok";
      return;
    case "get-xcrs": {
      const x = v.getXcrs();
      out.nr_xcrs = String(x.xcrs.length);
      out.flags = String(x.flags);
      for (const e of x.xcrs) out[`xcr${e.xcr}`] = hex(e.value);
      return;
    }
    case "set-regs":
      v.setRegs({ ...v.getRegs(), ...s.regs });
      out.errno = "ok";
      return;
    case "get-regs":
      regsObs(out, "regs", v.getRegs());
      return;
    case "get-sregs":
      flattenFields(v.getSregs(), "sregs", out);
      return;
    case "get-fpu":
      flattenFields(v.getFpu(), "fpu", out);
      return;
    case "get-vcpu-events":
      flattenFields(v.getVcpuEvents(), "events", out);
      return;
    case "get-debugregs":
      flattenFields(v.getDebugregs(), "debugregs", out);
      return;
    case "set-sregs":
    case "set-fpu":
    case "set-vcpu-events":
    case "set-debugregs":
      // the struct as KVM reports it, with the step's fields changed, goes back in
      if (s.kind === "set-sregs") v.setSregs(applyFields(v.getSregs(), s.fields));
      else if (s.kind === "set-fpu") v.setFpu(applyFields(v.getFpu(), s.fields));
      else if (s.kind === "set-vcpu-events") v.setVcpuEvents(applyFields(v.getVcpuEvents(), s.fields));
      else v.setDebugregs(applyFields(v.getDebugregs(), s.fields));
      out.errno = "ok";
      return;
    case "get-cpuid2": {
      if (s.nent === undefined) {
        cpuidObs(out, "cpuid2", v.getCpuid2());
        return;
      }
      const buf = new Uint8Array(kvmCpuid2Size(s.nent)).fill(s.prefill);
      new DataView(buf.buffer).setUint32(0, s.nent, true);
      bufferObs(out, buf, s.prefill, () => v.getCpuid2Into(buf));
      return;
    }
    case "cpuid-into": {
      const buf = new Uint8Array(kvmCpuid2Size(s.nent)).fill(s.prefill);
      new DataView(buf.buffer).setUint32(0, s.nent, true);
      bufferObs(out, buf, s.prefill, () => kvm.getCpuidInto(s.cpuid, buf));
      return;
    }
    case "emulated-cpuid":
      cpuidObs(out, "emulated", kvm.getEmulatedCpuid());
      return;
    case "device-attr":
      out.has = String(kvm.hasDeviceAttr(s.group, s.attr));
      out.value = hex(kvm.getDeviceAttr(s.group, s.attr));
      out.errno = "ok";
      return;
    case "get-into": {
      const buf = new Uint8Array(s.size).fill(s.prefill);
      bufferObs(out, buf, s.prefill, () => v.getInto(s.ioctl, buf));
      return;
    }
    case "set-xsave":
      v.setXsave(xsaveImageFor(s.image, apxOffset));
      out.errno = "ok";
      return;
    case "get-xsave":
      xsaveObs(out, v.getXsave(), profile);
      return;
    case "get-xsave2":
      out.cap = String(rig.vm.checkExtension("XSAVE2"));
      xsaveObs(out, v.getXsave2(), profile);
      return;
    case "run":
      runProgram(rig, s.spec, s.maxExits, out);
      return;
    case "sync-regs": {
      // a fresh report-and-halt program, then KVM_RUN with the requested valid/dirty classes
      loadGuestProgram(rig.vm, v, programFor({ program: "mov", regs: {}, cpl: 0 }), rig.mem);
      if (Object.keys(s.regs).length) v.syncRegs.write({ regs: { ...v.getRegs(), ...s.regs } });
      v.syncRegs.valid = s.valid;
      v.syncRegs.dirty = s.dirty;
      try {
        out["exit.0"] = describeExit(v.run());
        out.errno = "ok";
        if (s.valid & 1n) regsObs(out, "s.regs", v.syncRegs.read().regs);
      } finally {
        v.syncRegs.valid = 0n;
        v.syncRegs.dirty = 0n;
      }
      regsObs(out, "regs", v.getRegs());
      return;
    }
    case "check-extension":
      out.value = String(s.cap === "XSAVE2" ? rig.vm.checkExtension(KVM_CAP[s.cap]) : kvm.checkExtension(KVM_CAP[s.cap]));
      return;
    case "supported-cpuid": {
      const e = kvm.getSupportedCpuid().find((x) => x.function === s.leaf && ((x.flags & 1) === 0 || x.index === s.subleaf));
      out.present = e ? "yes" : "no";
      if (e) for (const r of s.regs) out[r] = hex(e[r]);
      return;
    }
  }
}

/**
 * Runs every step of `scenario` on `kvm` and returns what userspace saw. A step whose ioctl fails
 * records `errno` (the kernel's answer is an observation, not an error); other errors propagate.
 * `profile` names the XSAVE regions (the model's profile, so both sides are cut the same way).
 */
export function observeScenario(kvm: Kvm, scenario: RealScenario, profile: CpuProfile): StepObservation[] {
  const vm = kvm.createVm();
  try {
    const vcpu = vm.createVcpu(0);
    const mem = vm.addMemory(0, 0n, GUEST_MEMORY_SIZE);
    const rig: Rig = { vm, vcpu, mem };
    const apxOffset = profile.components.find((c) => c.index === 19)?.standardOffset ?? 960;
    return scenario.steps.map((s, index) => {
      const out: Record<string, string> = {};
      try {
        step(kvm, rig, s, profile, apxOffset, out);
      } catch (err) {
        if (!(err instanceof KvmError) || err.category === "unavailable") throw err;
        out.errno = err.errnoName;
      }
      return { index, kind: s.kind, at: s.at, obs: out };
    });
  } finally {
    vm.close();
  }
}
