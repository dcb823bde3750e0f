import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

const scen = (f: string) => join(fileURLToPath(new URL("../../../scenarios/", import.meta.url)), f);

describe("kvmx run: what each event showed and each expectation", () => {
  test("observations and expectation outcomes per event, with the line they are written on", async () => {
    const io = captureIo();
    expect(await main(["run", scen("xsetbv-faults-and-cr4-osxsave.yaml")], io)).toBe(0);
    const out = io.stdout();
    expect(out).toContain("seen: guest #GP(0), queued by KVM");
    expect(out).toContain("seen: guest #UD, raised by the CPU: xsetbv: xsetbv with CR4.OSXSAVE=0");
    expect(out).toContain("seen: KVM_SET_XCRS EINVAL (__kvm_set_xcr rejects 0x8001f: unsupported-bit)");
    expect(out).toMatch(/expect ok: fault — guest faults: #GP\(0\) \(queued by KVM\) \[line 19:15\]/);
    expect(out).toMatch(/expectation holds \(\d+ checks\)/);
  });

  test("a failed expectation: exit 1, FAILED with the message and where it is written", async () => {
    const text = readFileSync(scen("get-set-xsave-component-19.yaml"), "utf8").replace('960: "11 11', '960: "22 11');
    const io = captureIo({ "/x/img.yaml": text });
    expect(await main(["run", "/x/img.yaml"], io)).toBe(1);
    expect(io.stdout()).toMatch(/expect FAILED: xsave — bytes at 960: 1111111111111111, expected 2211111111111111 \[line \d+:\d+\]/);
    expect(io.stdout()).toMatch(/^expectation FAILED: event 3 \(get-xsave\): bytes at 960/m);
  });

  test("--json: observations (an image as XSTATE_BV and component 19) and expectations per event", async () => {
    const io = captureIo();
    expect(await main(["run", scen("get-set-xsave-component-19.yaml"), "--json"], io)).toBe(0);
    const j = JSON.parse(io.stdout());
    const get = j.events[3];
    expect(get.observations).toContainEqual(expect.objectContaining({ kind: "xsave", xstateBv: "0x80000", size: 11008 }));
    expect(get.observations.find((o: { kind: string }) => o.kind === "xsave").apx[0]).toBe("0x1111111111111111");
    expect(get.expectations.every((x: { ok: boolean }) => x.ok)).toBe(true);
    expect(j.expectations).toEqual([expect.objectContaining({ key: "violations", ok: true })]);
  });
});
