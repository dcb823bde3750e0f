/**
 * A self-contained ExecEnv backed by Maps: tagged memory words, MSRs, a CPUID table, an OUT log and
 * an optional intercept predicate. For tests, scenarios and anyone who needs "a machine around the CPU".
 */
import type { ModelOptions } from "../model-options.js";
import { cpuidLookup, type CpuidEntry, type CpuidResult } from "./cpuid.js";
import type { ExecEnv, TaggedWord } from "./executor.js";
import { val, vid, word, wordId, wordTag } from "./values.js";
import type { Instruction } from "./instructions.js";
import { Tag, type ProvenanceTag } from "./provenance.js";

export interface MapExecEnvInit {
  actor?: ProvenanceTag;
  cpuid?: readonly CpuidEntry[];
  msrs?: Iterable<readonly [number, bigint]>;
  intercepts?: (insn: Instruction) => boolean;
  options?: ModelOptions;
}

export class MapExecEnv implements ExecEnv {
  actor: ProvenanceTag;
  /** Keyed by 8-byte-aligned address; a store to an unaligned address is kept at that address. */
  readonly memory = new Map<bigint, TaggedWord>();
  readonly msrs: Map<number, bigint>;
  readonly ioLog: { port: number; value: number }[] = [];
  cpuidEntries: readonly CpuidEntry[];
  intercepts?: (insn: Instruction) => boolean;
  options?: ModelOptions;

  constructor(init: MapExecEnvInit = {}) {
    this.actor = init.actor ?? Tag.hostKernel;
    this.cpuidEntries = init.cpuid ?? [];
    this.msrs = new Map(init.msrs ?? []);
    if (init.intercepts) this.intercepts = init.intercepts;
    if (init.options) this.options = init.options;
  }

  load(base: number, off = 0): number {
    const w = this.memory.get(BigInt.asUintN(64, val(base) + BigInt(off)));
    return w ? word(vid(w.value), w.tag) : word(0, Tag.init);
  }
  store(base: number, off: number, id: number, tag: ProvenanceTag): void {
    this.memory.set(BigInt.asUintN(64, val(base) + BigInt(off)), { value: val(id), tag });
  }
  /** The word at `addr` as a value and tag (for tests and scenario output). */
  peek(addr: bigint): TaggedWord {
    const w = this.load(vid(addr), 0);
    return { value: val(wordId(w)), tag: wordTag(w) };
  }
  rdmsr(index: number): bigint | undefined {
    return this.msrs.get(index);
  }
  /** Only MSRs that already exist are writable (the model's stand-in for "MSR unknown → #GP"). */
  wrmsr(index: number, value: bigint): boolean {
    if (!this.msrs.has(index)) return false;
    this.msrs.set(index, BigInt.asUintN(64, value));
    return true;
  }
  cpuid(leaf: number, subleaf: number): CpuidResult {
    return cpuidLookup(this.cpuidEntries, leaf, subleaf);
  }
  out(port: number, value: number): void {
    this.ioLog.push({ port, value });
  }
}

export const createMapExecEnv = (init?: MapExecEnvInit): MapExecEnv => new MapExecEnv(init);
