import { describe, expect, it } from "vitest";
import { main } from "../src/main.js";
import { captureIo } from "./capture-io.js";

describe("kvmx uapi", () => {
  it("layout --json gives every struct with size and field offsets", async () => {
    const io = captureIo();
    expect(await main(["uapi", "layout", "--json"], io)).toBe(0);
    const j = JSON.parse(io.stdout());
    expect(j.schemaVersion).toBe(1);
    expect(j.structs.kvm_regs.size).toBe(144);
    expect(j.structs.kvm_regs.fields.find((f: { name: string }) => f.name === "rip")).toEqual({ name: "rip", offset: 128, size: 8, type: "u64" });
    expect(j.structs.kvm_run.fields.find((f: { name: string }) => f.name === "s")).toMatchObject({ offset: 304, size: 2048 });
    expect(j.structs.kvm_cpuid2.flexibleArray).toEqual({ name: "entries", offset: 8, elementSize: 40 });
    expect(j.structs.kvm_run_io.c).toBe("struct kvm_run.io");
  });

  it("layout prints a table per struct", async () => {
    const io = captureIo();
    expect(await main(["uapi", "layout"], io)).toBe(0);
    expect(io.stdout()).toContain("kvm_xcrs (struct kvm_xcrs), 392 bytes");
    expect(io.stdout()).toMatch(/264\s*│\s*128\s*│\s*padding\s*│\s*u64\[16\]/);
  });

  it("ioctls --json maps names to hex numbers", async () => {
    const io = captureIo();
    expect(await main(["uapi", "ioctls", "--json"], io)).toBe(0);
    const j = JSON.parse(io.stdout());
    expect(j.schemaVersion).toBe(1);
    expect(j.ioctls.KVM_RUN).toBe("0xae80");
    expect(j.ioctls.KVM_GET_REGS).toBe("0x8090ae81");
    expect(j.ioctls.KVM_GET_XSAVE2).toBe("0x9000aecf");
    expect(j.ioctls.KVM_GET_SUPPORTED_CPUID).toBe("0xc008ae05");
  });

  it("ioctls prints a table", async () => {
    const io = captureIo();
    expect(await main(["uapi", "ioctls"], io)).toBe(0);
    expect(io.stdout()).toMatch(/KVM_SET_XCRS\s*│\s*0x4188aea7/);
  });

  it("an unknown subcommand is a usage error", async () => {
    expect(await main(["uapi", "nope"], captureIo())).toBe(2);
  });
});
