import { PhysicalCpu } from "../cpu/physical-cpu.js";
import { cloneVcpu, type VcpuState } from "./vcpu.js";

/**
 * Everything one point of an exploration holds (DESIGN.md "The machine model"): the physical CPU
 * (R0–R31 with provenance, live XCR0), the vCPUs (a second one after migration), the guest's
 * architectural view of its registers, and the VMM task's saved FPU copy of R16–R31 while KVM_RUN
 * runs. Between events the CPU is in the VMM task (userspace). Typed arrays + a few scalars, so a
 * copy is cheap; `stateKey` is canonical.
 */
export interface MachineState {
  cpu: PhysicalCpu;
  vcpus: VcpuState[];
  /** Index into vcpus of the vCPU the VMM runs. */
  current: number;
  /**
   * The guest's architectural R0..R31 ("expected" view): what it last wrote or userspace set; zeros
   * on first enable; kept across XCR0.APX toggles per ASSUMPTIONS.xcr0ApxDisable.
   */
  expected: bigint[];
  /** The VMM task's FPU save area, R16..R31 part (saved at kvm_load_guest_fpu, restored at put). */
  userFpEgpr: bigint[];
  userFpEgprTag: number[];
  /** XSTATE_BV of the VMM task's fpstate buffer (bit 19 says whether component 19 was saved in use). */
  userXstateBv: bigint;
  /** -mapxf host: user R16..R31 saved at syscall entry (a -mapxf kernel must; restored at exit). */
  entryEgpr: bigint[];
  entryEgprTag: number[];
  /** Site id where an armed NMI fires during the next KVM_RUN ("guest" = while the guest runs). */
  armedNmi: string | undefined;
  /** Number of kernel WARNs so far (a WARN is an event, not an exception). */
  warnings: number;
}

/** The state's own arrays (plain arrays, see vcpu.ts), fresh or copied. */
export function machineArrays(from?: Pick<MachineState, "expected" | "userFpEgpr" | "userFpEgprTag" | "entryEgpr" | "entryEgprTag">) {
  if (from) {
    return {
      expected: from.expected.slice(), userFpEgpr: from.userFpEgpr.slice(), userFpEgprTag: from.userFpEgprTag.slice(),
      entryEgpr: from.entryEgpr.slice(), entryEgprTag: from.entryEgprTag.slice(),
    };
  }
  const z = (n: number) => new Array<bigint>(n).fill(0n);
  const t = () => new Array<number>(16).fill(0);
  return { expected: z(32), userFpEgpr: z(16), userFpEgprTag: t(), entryEgpr: z(16), entryEgprTag: t() };
}

export function cloneState(s: MachineState): MachineState {
  return {
    ...machineArrays(s),
    cpu: s.cpu.clone(),
    vcpus: s.vcpus.map(cloneVcpu),
    current: s.current,
    userXstateBv: s.userXstateBv,
    armedNmi: s.armedNmi,
    warnings: s.warnings,
  };
}

/** Values interned to small ids so keys stay short (the checker's alphabet uses a handful of values). */
const valueIds = new Map<bigint, number>();
function vid(v: bigint): number {
  let id = valueIds.get(v);
  if (id === undefined) {
    id = valueIds.size;
    valueIds.set(v, id);
  }
  return id;
}

/**
 * Canonical key: two states with equal keys behave the same for every future event. Includes
 * everything invariants read. Legacy physical GPRs are excluded: between events the CPU runs the
 * VMM, and the exit asm zeroes the guest's legacy GPRs (FACTS.md §3), so they never flow anywhere.
 */
export function stateKey(s: MachineState): string {
  const out: number[] = [];
  const cpu = s.cpu;
  for (let i = 16; i < 32; i++) out.push(vid(cpu.gpr[i]!), cpu.gprTag[i]!);
  out.push(vid(cpu.xcr0), vid(cpu.xinuse), vid(cpu.xss), cpu.pkru & 0xffff, cpu.pkru >>> 16);
  for (let i = 0; i < 32; i++) out.push(vid(s.expected[i]!));
  for (let i = 0; i < 16; i++) out.push(vid(s.userFpEgpr[i]!), s.userFpEgprTag[i]!, vid(s.entryEgpr[i]!), s.entryEgprTag[i]!);
  out.push(s.current, s.warnings > 0 ? 1 : 0, vid(s.userXstateBv));
  for (const v of s.vcpus) {
    out.push(0xfffe, v.id, v.regs.length);
    for (let i = 0; i < v.regs.length; i++) out.push(vid(v.regs[i]!), v.regsTag[i]!);
    out.push(vid(v.cr0), vid(v.cr3), vid(v.cr4), vid(v.pdptr[0]!), vid(v.pdptr[1]!), vid(v.pdptr[2]!), vid(v.pdptr[3]!));
    out.push(vid(v.rip), vid(v.rflags), vid(v.regsAvail), vid(v.regsDirty), vid(v.xcr0), vid(v.xss), v.pkru & 0xffff);
    out.push(v.cr4Osxsave ? 1 : 0, v.longMode ? 1 : 0, v.protectedState ? 1 : 0);
    const f = v.fpstate;
    out.push(vid(f.features), vid(f.xstateBv), f.restId);
    for (let i = 0; i < 16; i++) out.push(vid(f.egpr[i]!), f.egprTag[i]!);
    for (const [k, val] of [...v.msrs.entries()].sort((a, b) => a[0] - b[0])) out.push(k & 0xffff, k >>> 16, vid(val));
    for (const k of Object.keys(v.vendor).sort()) out.push(siteKeyId(k), vid(v.vendor[k]!));
    out.push(vid(BigInt(designId(v.design))));
  }
  out.push(s.armedNmi === undefined ? 0 : 1 + siteKeyId(s.armedNmi));
  // Ids above 0xfffe take three chars (escape + two halves) so the encoding stays injective.
  const codes: number[] = [];
  for (const n of out) {
    if (n < 0xffff) codes.push(n);
    else codes.push(0xffff, n & 0xffff, n >>> 16);
  }
  return String.fromCharCode.apply(null, codes);
}

const designIds = new Map<string, number>();
function designId(name: string): number {
  let id = designIds.get(name);
  if (id === undefined) designIds.set(name, (id = designIds.size));
  return id;
}
const siteIds = new Map<string, number>();
function siteKeyId(site: string): number {
  let id = siteIds.get(site);
  if (id === undefined) siteIds.set(site, (id = siteIds.size));
  return id;
}
