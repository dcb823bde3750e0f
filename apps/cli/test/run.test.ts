import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

const dir = fileURLToPath(new URL("../../../scenarios/", import.meta.url));
const scen = (f: string) => join(dir, f);

describe("kvmx run", () => {
  test("prints every site with live XCR0 and R16–R31 owner; exit 0 when the expectation holds", async () => {
    const io = captureIo();
    const code = await main(["run", scen("first-enable-zeros.yaml")], io);
    const out = io.stdout();
    expect(code).toBe(0);
    expect(out).toMatch(/vmx:asm-before-vmenter\s+asm\s+XCR0 0xe02e7\s+R16-R31 init/);
    expect(out).toMatch(/vmx:clear-lazy-avail .*\[avail-RSP,RIP,PDPTR,CR0,CR3,CR4,RFLAGS,SEGMENTS,EXIT_INFO_1,EXIT_INFO_2\]/);
    expect(out).toContain("guest read r16 = 0x0 as expected");
    expect(out).toContain("expectation holds");
  });

  test("--json: schemaVersion 1, scenario, steps, violations with step numbers, ok", async () => {
    const io = captureIo();
    const code = await main(["run", scen("fastpath-stale-egpr-c-xfeatures.yaml"), "--json"], io);
    const j = JSON.parse(io.stdout());
    expect(code).toBe(0); // the expectation (a cache-coherence violation) holds
    expect(j.schemaVersion).toBe(1);
    expect(j.scenario).toMatchObject({ name: "fastpath-stale-egpr-c-xfeatures", backend: "vmx", design: "c-xfeatures" });
    expect(j.ok).toBe(true);
    const v = j.violations[0];
    expect(v).toMatchObject({ invariant: "cache-coherence", site: "x86:fastpath" });
    expect(j.steps[v.step].site).toBe("x86:fastpath");
    expect(j.steps[v.step].violations).toContain("cache-coherence");
    expect(j.steps[0].xcr0).toMatch(/^0x[0-9a-f]+$/);
  });

  test("a violation without an expectation exits 1; a failed expectation exits 1", async () => {
    const text = readFileSync(scen("push2pop2-ud-apx-off-guest.yaml"), "utf8");
    const noExpect = text.replace(/^expect:.*$/m, "");
    const io = captureIo({ "/x/a.yaml": noExpect });
    expect(await main(["run", "/x/a.yaml"], io)).toBe(1);
    expect(io.stdout()).toMatch(/no-host-ud/);
    const wrong = text.replace(/^expect:.*$/m, "expect: { ok: true }");
    const io2 = captureIo({ "/x/b.yaml": wrong });
    expect(await main(["run", "/x/b.yaml"], io2)).toBe(1);
    expect(io2.stdout()).toContain("expectation FAILED: expected no violation, got no-host-ud");
  });

  test("a malformed scenario exits 65 with file:line:column", async () => {
    const io = captureIo({ "/x/bad.yaml": "name: b\nbackend: vmx\ndesign: asm-conditional\nevents:\n  - guest-write r99 0x1\n" });
    expect(await main(["run", "/x/bad.yaml"], io)).toBe(65);
    expect(io.stderr()).toContain("/x/bad.yaml:5:5:");
  });
});

describe("kvmx run --sites and NMI site validation", () => {
  test("--sites lists the sites of one KVM_RUN with kinds and NMI-openness", async () => {
    const io = captureIo();
    expect(await main(["run", scen("nmi-after-vmexit-mapxf.yaml"), "--sites"], io)).toBe(0);
    expect(io.stdout()).toMatch(/^vmx:asm-store-gprs\s+asm\s+NMI-open/m);
    expect(io.stdout()).toMatch(/^vmx:vmenter\s+hw\s{2,}VM-entry/m);
  });

  test("an nmi event naming a site the machine does not have is a 65 at the event's line", async () => {
    const text = "name: b\nbackend: vmx\ndesign: fpstate\nevents:\n  - guest-io\n  - nmi vmx:asm-before-vmenter\n";
    const io = captureIo({ "/x/nmi.yaml": text });
    expect(await main(["run", "/x/nmi.yaml"], io)).toBe(65);
    expect(io.stderr()).toMatch(/\/x\/nmi\.yaml:6:5: "vmx:asm-before-vmenter" is not an NMI-open site of vmx under fpstate/);
  });
});

describe("every example scenario produces its documented outcome", () => {
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".yaml"))) {
    test(f, async () => {
      const io = captureIo();
      const code = await main(["run", scen(f), "--json"], io);
      const j = JSON.parse(io.stdout() || "{}");
      expect(j.expectationFailures ?? io.stderr()).toEqual([]);
      expect(code).toBe(0);
    });
  }
});
