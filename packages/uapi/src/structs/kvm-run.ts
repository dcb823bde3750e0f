import { UapiDecodeError } from "../errors.js";
import { KVM_EXIT, KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT } from "../exit-reasons.js";
import { decodeStruct, encodeStructInto } from "./codec.js";
import { KVM_RUN_EXIT_UNION_OFFSET, KVM_STRUCTS, type StructValue } from "./layout.js";

/**
 * Reading struct kvm_run the way a VMM does after KVM_RUN returns: exit_reason picks one member of
 * the exit union; the sync-regs area (kvm_valid_regs, kvm_dirty_regs, s.regs) is shared both ways.
 */
const RUN = KVM_STRUCTS.kvm_run;
const fieldOffset = (name: string): number => {
  const f = RUN.fields.find((x) => x.name === name);
  if (!f) throw new UapiDecodeError("kvm_run", `layout has no field ${name}`);
  return f.offset;
};
const EXIT_REASON = fieldOffset("exit_reason");
const IMMEDIATE_EXIT = fieldOffset("immediate_exit");
const VALID_REGS = fieldOffset("kvm_valid_regs");
const DIRTY_REGS = fieldOffset("kvm_dirty_regs");
/** Offset of kvm_run.s, the kvm_sync_regs area. */
export const KVM_RUN_SYNC_REGS_OFFSET = fieldOffset("s");
const SYNC = KVM_STRUCTS.kvm_sync_regs.fields;
const SYNC_PART_OFFSET = {
  regs: SYNC[0].offset,
  sregs: SYNC[1].offset,
  events: SYNC[2].offset,
} as const;

export type KvmSyncRegs = StructValue<"kvm_sync_regs">;

/** A KVM_RUN exit as userspace sees it; `exitReason` is always the raw kvm_run.exit_reason. */
export type KvmExit =
  | {
      kind: "io";
      exitReason: number;
      direction: "in" | "out";
      size: number;
      port: number;
      count: number;
      /**
       * size*count bytes at data_offset of the kvm_run mapping. OUT: a copy of what the guest wrote
       * (it stays readable after the vCPU is closed). IN: a view of the mapping where the VMM puts
       * the answer before the next KVM_RUN, valid until then and never after close.
       */
      data: Uint8Array;
    }
  | { kind: "hlt"; exitReason: number }
  | { kind: "shutdown"; exitReason: number }
  | { kind: "intr"; exitReason: number }
  | { kind: "exception"; exitReason: number; exception: number; errorCode: number }
  | { kind: "mmio"; exitReason: number; physAddr: bigint; data: Uint8Array; len: number; isWrite: boolean }
  | { kind: "fail-entry"; exitReason: number; hardwareEntryFailureReason: bigint; cpu: number }
  | { kind: "internal-error"; exitReason: number; suberror: number; data: bigint[] }
  | { kind: "unknown"; exitReason: number; hardwareExitReason: bigint }
  | { kind: "other"; exitReason: number };

function dataView(run: Uint8Array): DataView {
  return new DataView(run.buffer, run.byteOffset, run.byteLength);
}

function checkRun(run: Uint8Array): void {
  if (!(run instanceof Uint8Array)) throw new UapiDecodeError("kvm_run", "input is not a byte buffer");
  if (run.byteLength < RUN.size) throw new UapiDecodeError("kvm_run", `truncated: needs ${RUN.size} bytes, buffer has ${run.byteLength}`);
}

const IO = KVM_STRUCTS.kvm_run_io.fields;
const ioOffset = (name: string): number => KVM_RUN_EXIT_UNION_OFFSET + (IO.find((f) => f.name === name)?.offset ?? NaN);
const IO_DIRECTION = ioOffset("direction");
const IO_SIZE = ioOffset("size");
const IO_PORT = ioOffset("port");
const IO_COUNT = ioOffset("count");
const IO_DATA_OFFSET = ioOffset("data_offset");

/**
 * Reads exits out of one kvm_run mapping. It keeps the DataView and the last io data view, so the
 * per-exit cost on the KVM_RUN hot path is a few loads and one small object (the bench measures it).
 */
export class KvmRunReader {
  readonly #run: Uint8Array;
  readonly #dv: DataView;
  #ioAt = -1;
  #ioLen = -1;
  #ioData: Uint8Array = new Uint8Array(0);

  constructor(run: Uint8Array) {
    checkRun(run);
    this.#run = run;
    this.#dv = dataView(run);
  }

  exit(): KvmExit {
    const dv = this.#dv;
    const exitReason = dv.getUint32(EXIT_REASON, true);
    if (exitReason === KVM_EXIT.IO) return this.#io(exitReason);
    return decodeOtherExit(this.#run, exitReason);
  }

  #io(exitReason: number): KvmExit {
    const dv = this.#dv;
    const direction = dv.getUint8(IO_DIRECTION);
    if (direction !== KVM_EXIT_IO_IN && direction !== KVM_EXIT_IO_OUT) {
      throw new UapiDecodeError("kvm_run", `io.direction ${direction} is neither IN nor OUT`);
    }
    const size = dv.getUint8(IO_SIZE);
    const count = dv.getUint32(IO_COUNT, true);
    const len = size * count;
    // data_offset is a u64; anything with high bits set is outside any mapping
    const lo = dv.getUint32(IO_DATA_OFFSET, true);
    const hi = dv.getUint32(IO_DATA_OFFSET + 4, true);
    if (hi !== 0 || lo + len > this.#run.byteLength) {
      const at = dv.getBigUint64(IO_DATA_OFFSET, true);
      throw new UapiDecodeError("kvm_run", `io data (${len} bytes at ${at}) lies outside the ${this.#run.byteLength}-byte mapping`);
    }
    if (lo !== this.#ioAt || len !== this.#ioLen) {
      this.#ioAt = lo;
      this.#ioLen = len;
      this.#ioData = this.#run.subarray(lo, lo + len);
    }
    const in_ = direction === KVM_EXIT_IO_IN;
    return {
      kind: "io",
      exitReason,
      direction: in_ ? "in" : "out",
      size,
      port: dv.getUint16(IO_PORT, true),
      count,
      // IN: the VMM answers by writing into the mapping, so data is a view (valid until the next
      // KVM_RUN or close); OUT: a copy, so the value outlives the mapping (reading a view of an
      // unmapped kvm_run would crash the process)
      data: in_ ? this.#ioData : this.#ioData.slice(),
    };
  }
}

/** Decodes the exit described by a kvm_run buffer (the whole vcpu mapping, so io data is reachable). */
export function decodeKvmExit(run: Uint8Array): KvmExit {
  return new KvmRunReader(run).exit();
}

function decodeOtherExit(run: Uint8Array, exitReason: number): KvmExit {
  const u = KVM_RUN_EXIT_UNION_OFFSET;
  switch (exitReason) {
    case KVM_EXIT.HLT:
      return { kind: "hlt", exitReason };
    case KVM_EXIT.SHUTDOWN:
      return { kind: "shutdown", exitReason };
    case KVM_EXIT.INTR:
      return { kind: "intr", exitReason };
    case KVM_EXIT.EXCEPTION: {
      const ex = decodeStruct("kvm_run_ex", run, u);
      return { kind: "exception", exitReason, exception: ex.exception, errorCode: ex.error_code };
    }
    case KVM_EXIT.MMIO: {
      const m = decodeStruct("kvm_run_mmio", run, u);
      if (m.len > 8) throw new UapiDecodeError("kvm_run", `mmio.len ${m.len} exceeds the 8-byte data field`);
      return { kind: "mmio", exitReason, physAddr: m.phys_addr, data: m.data.slice(0, m.len), len: m.len, isWrite: m.is_write !== 0 };
    }
    case KVM_EXIT.FAIL_ENTRY: {
      const f = decodeStruct("kvm_run_fail_entry", run, u);
      return { kind: "fail-entry", exitReason, hardwareEntryFailureReason: f.hardware_entry_failure_reason, cpu: f.cpu };
    }
    case KVM_EXIT.INTERNAL_ERROR: {
      const ie = decodeStruct("kvm_run_internal", run, u);
      if (ie.ndata > ie.data.length) throw new UapiDecodeError("kvm_run", `internal.ndata ${ie.ndata} exceeds ${ie.data.length}`);
      return { kind: "internal-error", exitReason, suberror: ie.suberror, data: ie.data.slice(0, ie.ndata) };
    }
    case KVM_EXIT.UNKNOWN: {
      const hw = decodeStruct("kvm_run_hw", run, u);
      return { kind: "unknown", exitReason, hardwareExitReason: hw.hardware_exit_reason };
    }
    default:
      return { kind: "other", exitReason };
  }
}

/** kvm_run.kvm_valid_regs: the classes KVM stored into s.regs at the last exit. */
export function readValidRegs(run: Uint8Array): bigint {
  checkRun(run);
  return dataView(run).getBigUint64(VALID_REGS, true);
}

/** Sets kvm_run.kvm_valid_regs: the classes KVM should store at the next exits. */
export function writeValidRegs(run: Uint8Array, mask: bigint): void {
  checkRun(run);
  dataView(run).setBigUint64(VALID_REGS, mask, true);
}

export function readDirtyRegs(run: Uint8Array): bigint {
  checkRun(run);
  return dataView(run).getBigUint64(DIRTY_REGS, true);
}

/** Sets kvm_run.kvm_dirty_regs: the classes KVM must load from s.regs before the next entry. */
export function writeDirtyRegs(run: Uint8Array, mask: bigint): void {
  checkRun(run);
  dataView(run).setBigUint64(DIRTY_REGS, mask, true);
}

/** Reads kvm_run.s.regs as a whole (regs, sregs, events). */
export function readSyncRegs(run: Uint8Array): KvmSyncRegs {
  checkRun(run);
  return decodeStruct("kvm_sync_regs", run, KVM_RUN_SYNC_REGS_OFFSET);
}

/** Writes the given parts of kvm_run.s.regs; the caller then marks them in kvm_dirty_regs. */
export function writeSyncRegs(run: Uint8Array, parts: Partial<KvmSyncRegs>): void {
  checkRun(run);
  const base = KVM_RUN_SYNC_REGS_OFFSET;
  if (parts.regs) encodeStructInto("kvm_regs", parts.regs, run, base + SYNC_PART_OFFSET.regs);
  if (parts.sregs) encodeStructInto("kvm_sregs", parts.sregs, run, base + SYNC_PART_OFFSET.sregs);
  if (parts.events) encodeStructInto("kvm_vcpu_events", parts.events, run, base + SYNC_PART_OFFSET.events);
}

/** kvm_run.immediate_exit: when 1, KVM_RUN returns EINTR before entering the guest. */
export function writeImmediateExit(run: Uint8Array, value: 0 | 1): void {
  checkRun(run);
  run[IMMEDIATE_EXIT] = value;
}

export function readExitReason(run: Uint8Array): number {
  checkRun(run);
  return dataView(run).getUint32(EXIT_REASON, true);
}
