import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ScenarioError } from "@kvmx/core";
import { vmxBackend } from "@kvmx/vmx";
import { describe, expect, it } from "vitest";
import { compareObservations } from "../src/diff/compare.js";
import { diffKernels } from "../src/diff/diff-kernels.js";
import { HOST_QUIRKS, QUIRKS_BY_HOST_KIND } from "../src/diff/host-quirks.js";
import { observeScenario, type StepObservation } from "../src/diff/observe.js";
import { parseRealScenario } from "../src/diff/real-scenario.js";
import { ModelKvm } from "../src/model/model-kvm.js";

/**
 * The differential harness proven without /dev/kvm: model against an identical model finds nothing,
 * model against a deliberately altered model finds exactly the expected differences, and the quirk
 * table labels exactly the differences docs/facts.md#host-quirks describes.
 */
const REAL_DIR = fileURLToPath(new URL("../../../scenarios/real/", import.meta.url));
const realFiles = readdirSync(REAL_DIR).filter((f) => f.endsWith(".yaml"));
const model = (cpu = "kvm-pvm", options = {}) => new ModelKvm({ backend: vmxBackend, cpu, options });

describe("scenario files", () => {
  it("scenarios/real holds the documented set and every file parses", () => {
    expect(realFiles.sort()).toEqual([
      "cpuid-caps.yaml", "cpuid-xcrs-order.yaml", "fpu.yaml", "guest-programs.yaml", "host-quirks.yaml", "mxcsr.yaml", "real-mode.yaml",
      "regs-sync.yaml", "reset-state.yaml", "sregs.yaml", "vcpu-events.yaml", "xcr0-set-xcrs.yaml", "xsave-rules.yaml",
    ]);
    for (const f of realFiles) expect(parseRealScenario(readFileSync(REAL_DIR + f, "utf8"), f).steps.length).toBeGreaterThan(3);
  });

  const errorAt = (text: string): { message: string; line?: number; column?: number } => {
    try {
      parseRealScenario(text, "bad.yaml");
    } catch (err) {
      if (err instanceof ScenarioError) return { message: err.message, line: err.location?.line, column: err.location?.column };
      throw err;
    }
    throw new Error("expected a ScenarioError");
  };

  it("u64 values above 2^53 are read exactly from the YAML text", () => {
    const s = parseRealScenario("steps:\n  - set-regs: { r15: 0xffffffffffffffff, rax: 18446744073709551615 }\n", "big.yaml");
    expect(s.steps[0]).toMatchObject({ kind: "set-regs", regs: { r15: (1n << 64n) - 1n, rax: (1n << 64n) - 1n } });
  });

  it("errors carry file:line:column of the offending value", () => {
    expect(errorAt("steps:\n  - get-regs\n  - set-xcrs: zz\n")).toMatchObject({ line: 3, column: 15, message: expect.stringMatching(/^bad\.yaml:3:15: xcr0 must be a u64/) });
    expect(errorAt("steps:\n  - get-regs\n  - frobnicate\n")).toMatchObject({ line: 3, column: 5, message: expect.stringMatching(/unknown step "frobnicate"/) });
    expect(errorAt("steps:\n  - run: { program: fault, fault: ud3 }\n")).toMatchObject({ line: 2, message: expect.stringMatching(/fault must be/) });
    expect(errorAt("model: { cpu: spr, colour: red }\nsteps: [get-regs]\n")).toMatchObject({ line: 1, column: 20, message: expect.stringMatching(/unknown key "colour"/) });
    expect(errorAt("model: { options: { setXsaveApxAbsent: maybe } }\nsteps: [get-regs]\n")).toMatchObject({ line: 1, message: expect.stringMatching(/leave-unchanged, init-zeros/) });
    expect(errorAt("steps: [get-regs\n")).toMatchObject({ line: 2, message: expect.stringMatching(/YAML syntax/) });
  });
});

describe("model against model", () => {
  it.each(realFiles)("%s: an identical second model shows no difference", (f) => {
    const s = parseRealScenario(readFileSync(REAL_DIR + f, "utf8"), f);
    const a = model(s.model.cpu);
    const r = diffKernels(s, { name: "model", kvm: a }, { name: "twin", kvm: model(s.model.cpu) }, a.cfg.profile, []);
    expect(r.differences).toEqual([]);
    expect(r.steps).toBe(s.steps.length);
  });

  const APX_SCENARIO = `
name: apx-absent
model: { cpu: dmr }
steps:
  - set-cpuid
  - set-xcrs: 0x800e7
  - set-xsave: { xstateBv: 0x80003, apx: [0x1111, 0x2222] }
  - get-xsave2
  - set-xsave: { xstateBv: 0x3 }
  - get-xsave2
`;

  it("setXsaveApxAbsent is the checker's expectation, not KVM's behaviour: both choices report the same images", () => {
    // The series copies component 19 into regs[16..31] only when XSTATE_BV[19]=1, whatever a guest
    // should see afterwards; so a model under either choice answers every ioctl alike.
    const s = parseRealScenario(APX_SCENARIO, "apx.yaml");
    const a = model("dmr");
    const r = diffKernels(s, { name: "model", kvm: a }, { name: "init-zeros", kvm: model("dmr", { setXsaveApxAbsent: "init-zeros" }) }, a.cfg.profile, []);
    expect(r.differences).toEqual([]);
    expect(r.steps).toBe(6);
  });

  it("a tweaked profile (zen: PKRU, XCR0 0x2e7) is found where XCR0 support and the layout differ", () => {
    const s = parseRealScenario(
      "steps:\n  - supported-cpuid: { leaf: 0xd }\n  - set-cpuid\n  - set-xcrs: 0x2e7\n  - get-xcrs\n  - set-xcrs: 0xe7\n  - get-xcrs\n",
      "zen.yaml",
    );
    const a = model("kvm-pvm");
    const r = diffKernels(s, { name: "kvm-pvm", kvm: a }, { name: "zen", kvm: model("zen") }, a.cfg.profile, []);
    const keys = r.differences.map((d) => `${d.step}:${d.key}=${d.left}|${d.right}`);
    expect(keys).toEqual([
      "0:eax=0xe7|0x2e7",
      // leaf 0xD.0 EBX/ECX: the standard size grows by PKRU's 8 bytes at 2688 (docs/facts.md#xfeatures)
      "0:ebx=0xa80|0xa88",
      "0:ecx=0xa80|0xa88",
      "2:errno=EINVAL|ok",
      "3:xcr0=0x1|0x2e7",
    ]);
  });
});

describe("observations", () => {
  it("set-xsave patches land in the image and read back as the named regions", () => {
    const s = parseRealScenario(
      'steps:\n  - set-cpuid\n  - set-xcrs: 0x7\n  - set-xsave: { xstateBv: 0x7, patch: { "576": "0102", "160": "ff" } }\n  - get-xsave\n',
      "p.yaml",
    );
    const m = model();
    const [, , set, get] = observeScenario(m, s, m.cfg.profile);
    expect(set!.obs).toEqual({ errno: "ok" });
    expect(get!.obs["xsave.YMM"]).toBe("0102" + "00".repeat(254));
    expect(get!.obs["xsave.xmm"]).toBe("ff" + "00".repeat(255));
    expect(get!.obs["xsave.xstate_bv"]).toBe("0x7");
  });

  it("a run records each exit, the reported fault vector, registers and XCR0", () => {
    const s = parseRealScenario("steps:\n  - set-cpuid\n  - run: { program: fault, fault: ud2 }\n", "r.yaml");
    const m = model();
    const [, run] = observeScenario(m, s, m.cfg.profile);
    expect(run!.obs).toMatchObject({ "exit.0": "io out port=0x11 size=1 count=1 data=06", "exit.1": "hlt", "fault-vector": "6", xcr0: "0x1" });
  });
});

describe("host-quirk classification", () => {
  const s = parseRealScenario(
    "steps:\n  - get-fpu\n  - set-cpuid: { xcr0Mask: 0x3 }\n  - set-xcrs: 0x7\n  - set-cpuid\n  - set-xcrs: 0x7\n  - supported-cpuid: { leaf: 1 }\n",
    "q.yaml",
  );
  const obs = (rows: Record<string, string>[]): StepObservation[] => rows.map((o, index) => ({ index, kind: s.steps[index]!.kind, at: s.steps[index]!.at, obs: o }));
  const left = obs([{ mxcsr: "0x1f80", fcw: "0x37f" }, { errno: "ok" }, { errno: "EINVAL" }, { errno: "ok" }, { errno: "ok" }, { ecx: "0x14000201" }]);
  const right = obs([{ mxcsr: "0x0", fcw: "0x40" }, { errno: "ok" }, { errno: "ok" }, { errno: "ok" }, { errno: "EINVAL" }, { ecx: "0x201" }]);

  it("labels the listed kvm_pvm differences and leaves the others unexplained", () => {
    const r = compareObservations(s, { name: "model", obs: left }, { name: "kvm", obs: right }, HOST_QUIRKS);
    expect(r.differences.map((d) => [d.step, d.key, d.quirk ?? "-"])).toEqual([
      // KVM_GET_FPU's MXCSR 0 is upstream's behaviour (the model's too), not a quirk
      [0, "mxcsr", "-"],
      [0, "fcw", "-"],
      [2, "errno", "cpuid2-host-leaves"],
      // after an unrestricted KVM_SET_CPUID2 the quirk no longer explains an XCR0 difference
      [4, "errno", "-"],
      [5, "ecx", "supported-cpuid-leaf1"],
    ]);
    expect(r.unexplained).toBe(3);
  });

  it("without the quirk table every difference counts", () => {
    expect(compareObservations(s, { name: "model", obs: left }, { name: "kvm", obs: right }, []).unexplained).toBe(5);
  });

  it("every quirk of every host kind names an anchor of docs/facts.md, and names are unique", () => {
    const facts = readFileSync(fileURLToPath(new URL("../../../docs/facts.md", import.meta.url)), "utf8");
    const all = Object.values(QUIRKS_BY_HOST_KIND).flat();
    for (const q of all) {
      const m = /^docs\/facts\.md#([a-z0-9-]+)$/.exec(q.facts);
      expect(m, q.name).not.toBeNull();
      expect(facts, `${q.name}: anchor ${m![1]}`).toContain(`id="${m![1]}"`);
    }
    expect(new Set(all.map((q) => q.name)).size).toBe(all.length);
  });
});
