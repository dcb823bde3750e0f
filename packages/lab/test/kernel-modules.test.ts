import { describe, expect, it } from "vitest";
import { LabError } from "../src/errors.js";
import { LAB_MODULES, moduleLoadOrder, moduleName, parseModuleIndex } from "../src/kernel-modules.js";

/** A modules.dep excerpt shaped like Debian 6.12's (xz-compressed files, "-" in file names). */
const DEP = `kernel/arch/x86/kvm/kvm.ko.xz: kernel/virt/lib/irqbypass.ko.xz
kernel/arch/x86/kvm/kvm-amd.ko.xz: kernel/drivers/crypto/ccp/ccp.ko.xz kernel/arch/x86/kvm/kvm.ko.xz kernel/virt/lib/irqbypass.ko.xz
kernel/drivers/crypto/ccp/ccp.ko.xz:
kernel/virt/lib/irqbypass.ko.xz:
kernel/fs/netfs/netfs.ko.xz:
kernel/net/9p/9pnet.ko.xz: kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/fs/overlayfs/overlay.ko.xz:
`;
const BUILTIN = "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/virtio/virtio.ko\n";

describe("module load order from modules.dep", () => {
  it("names compare as the kernel compares them", () => {
    expect(moduleName("kernel/arch/x86/kvm/kvm-amd.ko.xz")).toBe("kvm_amd");
    expect(moduleName("x/9pnet_virtio.ko")).toBe("9pnet_virtio");
    expect(moduleName("a/b.ko.zst")).toBe("b");
  });

  it("every dependency comes before its user, each file once, built-in modules need no file", () => {
    const order = moduleLoadOrder(parseModuleIndex(DEP, BUILTIN), LAB_MODULES);
    expect(new Set(order).size).toBe(order.length);
    const at = (f: string) => order.findIndex((p) => p.endsWith(f));
    expect(at("kvm-amd.ko.xz")).toBeGreaterThan(at("kvm.ko.xz"));
    expect(at("kvm.ko.xz")).toBeGreaterThan(at("irqbypass.ko.xz"));
    expect(at("kvm-amd.ko.xz")).toBeGreaterThan(at("ccp.ko.xz"));
    expect(at("9p.ko.xz")).toBeGreaterThan(at("9pnet.ko.xz"));
    expect(at("9pnet.ko.xz")).toBeGreaterThan(at("netfs.ko.xz"));
    expect(order.some((p) => p.includes("virtio_pci"))).toBe(false);
    expect(order).toHaveLength(9);
  });

  it("a wanted module that is neither a file nor built in is a LabError naming who needs it", () => {
    const broken = DEP.replace("kernel/virt/lib/irqbypass.ko.xz:\n", "");
    let err: unknown;
    try {
      moduleLoadOrder(parseModuleIndex(broken, BUILTIN), ["kvm_amd"]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LabError);
    expect((err as LabError).message).toMatch(/irqbypass is neither a module file nor built in \(needed by kvm_amd → kvm\)/);
    expect((err as LabError).category).toBe("unavailable");
  });
});
