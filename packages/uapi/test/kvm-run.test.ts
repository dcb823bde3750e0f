import { describe, expect, it } from "vitest";
import { UapiDecodeError } from "../src/errors.js";
import { KVM_EXIT, KVM_EXIT_IO_OUT } from "../src/exit-reasons.js";
import { encodeStructInto, zeroStruct } from "../src/structs/codec.js";
import {
  decodeKvmExit,
  KvmRunReader,
  KVM_RUN_SYNC_REGS_OFFSET,
  readDirtyRegs,
  readSyncRegs,
  readValidRegs,
  writeDirtyRegs,
  writeImmediateExit,
  writeSyncRegs,
  writeValidRegs,
} from "../src/structs/kvm-run.js";
import { KVM_RUN_EXIT_UNION_OFFSET } from "../src/structs/layout.js";
import { KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from "../src/sync-regs.js";

/** A fake two-page kvm_run mapping, as KVM_GET_VCPU_MMAP_SIZE typically reports on x86 (plus more pages). */
const mapping = () => new Uint8Array(3 * 4096);
const setReason = (run: Uint8Array, r: number) => new DataView(run.buffer).setUint32(8, r, true);

describe("decodeKvmExit", () => {
  it("decodes an OUT exit with its data bytes at data_offset", () => {
    const run = mapping();
    setReason(run, KVM_EXIT.IO);
    encodeStructInto("kvm_run_io", { direction: KVM_EXIT_IO_OUT, size: 1, port: 0x3f8, count: 2, data_offset: 4096n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    run[4096] = 0x41;
    run[4097] = 0x42;
    const exit = decodeKvmExit(run);
    expect(exit).toMatchObject({ kind: "io", direction: "out", port: 0x3f8, size: 1, count: 2, exitReason: 2 });
    if (exit.kind !== "io") throw new Error("unreachable");
    expect([...exit.data]).toEqual([0x41, 0x42]);
  });

  it("an IN exit's data is a live view the VMM fills", () => {
    const run = mapping();
    setReason(run, KVM_EXIT.IO);
    encodeStructInto("kvm_run_io", { direction: 0, size: 4, port: 0x60, count: 1, data_offset: 4096n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    const exit = decodeKvmExit(run);
    if (exit.kind !== "io") throw new Error("unreachable");
    exit.data.set([1, 2, 3, 4]);
    expect([...run.subarray(4096, 4100)]).toEqual([1, 2, 3, 4]);
  });

  it("a KvmRunReader follows data_offset and length from exit to exit", () => {
    const run = mapping();
    setReason(run, KVM_EXIT.IO);
    const reader = new KvmRunReader(run);
    run.set([1, 2, 3, 4], 4096);
    run.set([9, 8], 8192);
    encodeStructInto("kvm_run_io", { direction: 1, size: 1, port: 1, count: 2, data_offset: 4096n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    const a = reader.exit();
    encodeStructInto("kvm_run_io", { direction: 1, size: 2, port: 1, count: 1, data_offset: 8192n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    const b = reader.exit();
    encodeStructInto("kvm_run_io", { direction: 1, size: 4, port: 1, count: 1, data_offset: 4096n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    const c = reader.exit();
    if (a.kind !== "io" || b.kind !== "io" || c.kind !== "io") throw new Error("unreachable");
    expect([...a.data]).toEqual([1, 2]);
    expect([...b.data]).toEqual([9, 8]);
    expect([...c.data]).toEqual([1, 2, 3, 4]);
    encodeStructInto("kvm_run_io", { direction: 1, size: 1, port: 1, count: 1, data_offset: 1n << 32n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    expect(() => reader.exit()).toThrow(/outside/);
  });

  it("rejects io data outside the mapping and unknown directions", () => {
    const run = mapping();
    setReason(run, KVM_EXIT.IO);
    encodeStructInto("kvm_run_io", { direction: 1, size: 4, port: 0, count: 4000, data_offset: 4096n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    expect(() => decodeKvmExit(run)).toThrow(UapiDecodeError);
    encodeStructInto("kvm_run_io", { direction: 7, size: 1, port: 0, count: 1, data_offset: 4096n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    expect(() => decodeKvmExit(run)).toThrow(/direction/);
  });

  it("decodes hlt, shutdown, internal error, fail entry, mmio, exception and unnamed reasons", () => {
    const run = mapping();
    setReason(run, KVM_EXIT.HLT);
    expect(decodeKvmExit(run)).toEqual({ kind: "hlt", exitReason: 5 });
    setReason(run, KVM_EXIT.SHUTDOWN);
    expect(decodeKvmExit(run).kind).toBe("shutdown");
    setReason(run, KVM_EXIT.INTERNAL_ERROR);
    const ie = zeroStruct("kvm_run_internal");
    ie.suberror = 1;
    ie.ndata = 2;
    ie.data[0] = 0x10n;
    ie.data[1] = 0x20n;
    encodeStructInto("kvm_run_internal", ie, run, KVM_RUN_EXIT_UNION_OFFSET);
    expect(decodeKvmExit(run)).toEqual({ kind: "internal-error", exitReason: 17, suberror: 1, data: [0x10n, 0x20n] });
    setReason(run, KVM_EXIT.FAIL_ENTRY);
    encodeStructInto("kvm_run_fail_entry", { hardware_entry_failure_reason: 0x21n, cpu: 3 }, run, KVM_RUN_EXIT_UNION_OFFSET);
    expect(decodeKvmExit(run)).toEqual({ kind: "fail-entry", exitReason: 9, hardwareEntryFailureReason: 0x21n, cpu: 3 });
    setReason(run, KVM_EXIT.MMIO);
    encodeStructInto("kvm_run_mmio", { phys_addr: 0xfee00000n, data: new Uint8Array([1, 2, 3, 4, 0, 0, 0, 0]), len: 4, is_write: 1 }, run, KVM_RUN_EXIT_UNION_OFFSET);
    expect(decodeKvmExit(run)).toEqual({ kind: "mmio", exitReason: 6, physAddr: 0xfee00000n, data: new Uint8Array([1, 2, 3, 4]), len: 4, isWrite: true });
    setReason(run, KVM_EXIT.EXCEPTION);
    encodeStructInto("kvm_run_ex", { exception: 13, error_code: 0 }, run, KVM_RUN_EXIT_UNION_OFFSET);
    expect(decodeKvmExit(run)).toEqual({ kind: "exception", exitReason: 1, exception: 13, errorCode: 0 });
    setReason(run, 1234);
    expect(decodeKvmExit(run)).toEqual({ kind: "other", exitReason: 1234 });
  });

  it("rejects a buffer shorter than struct kvm_run", () => {
    expect(() => decodeKvmExit(new Uint8Array(2351))).toThrow(UapiDecodeError);
  });
});

describe("sync regs area", () => {
  it("valid/dirty masks sit at 288/296 and s.regs at 304", () => {
    const run = mapping();
    writeValidRegs(run, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
    writeDirtyRegs(run, KVM_SYNC_X86_REGS);
    const dv = new DataView(run.buffer);
    expect(dv.getBigUint64(288, true)).toBe(3n);
    expect(dv.getBigUint64(296, true)).toBe(1n);
    expect(readValidRegs(run)).toBe(3n);
    expect(readDirtyRegs(run)).toBe(1n);
    expect(KVM_RUN_SYNC_REGS_OFFSET).toBe(304);
  });

  it("writes only the parts given and reads them back", () => {
    const run = mapping();
    const regs = zeroStruct("kvm_regs");
    regs.rip = 0x1000n;
    regs.r15 = 0xdeadn;
    writeSyncRegs(run, { regs });
    expect(new DataView(run.buffer).getBigUint64(304 + 128, true)).toBe(0x1000n);
    const sregs = zeroStruct("kvm_sregs");
    sregs.cr4 = 0x40000n;
    writeSyncRegs(run, { sregs });
    const back = readSyncRegs(run);
    expect(back.regs.r15).toBe(0xdeadn);
    expect(back.sregs.cr4).toBe(0x40000n);
    writeImmediateExit(run, 1);
    expect(run[1]).toBe(1);
  });
});

describe("io exit data and the mapping's lifetime (found in the lab: a test read an OUT exit's data after closing the VM and crashed the process)", () => {
  it("OUT data is a copy that outlives the kvm_run buffer; IN data is a view the VMM answers through", () => {
    const run = new Uint8Array(3 * 4096);
    new DataView(run.buffer).setUint32(8, 2, true); // KVM_EXIT_IO
    const reader = new KvmRunReader(run);
    encodeStructInto("kvm_run_io", { direction: 1, size: 1, port: 0x10, count: 1, data_offset: 4096n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    run[4096] = 0x42;
    const out = reader.exit();
    run[4096] = 0;
    expect(out).toMatchObject({ kind: "io", direction: "out", data: Uint8Array.of(0x42) });
    encodeStructInto("kvm_run_io", { direction: 0, size: 1, port: 0x10, count: 1, data_offset: 4096n }, run, KVM_RUN_EXIT_UNION_OFFSET);
    const inExit = reader.exit();
    if (inExit.kind !== "io") throw new Error("expected an io exit");
    inExit.data[0] = 0x99;
    expect(run[4096]).toBe(0x99);
  });
});
