import { LabError } from "./errors.js";

/**
 * Which module files the lab's initramfs must carry and in which order to load them: resolved from
 * the kernel's modules.dep (written by depmod: "path: dependency paths…") and modules.builtin (the
 * modules compiled in, which need no file). Names compare as the kernel compares them: "-" = "_".
 */
export const LAB_MODULES = ["kvm_amd", "virtio_pci", "9pnet_virtio", "9p", "overlay"] as const;

export const moduleName = (path: string): string =>
  path
    .slice(path.lastIndexOf("/") + 1)
    .replace(/\.ko(\.(xz|zst|gz))?$/, "")
    .replaceAll("-", "_");

export interface ModuleIndex {
  /** module name → its file (relative to lib/modules/<version>) and the files it depends on */
  readonly modules: ReadonlyMap<string, { readonly path: string; readonly deps: readonly string[] }>;
  readonly builtin: ReadonlySet<string>;
}

export function parseModuleIndex(modulesDep: string, modulesBuiltin = ""): ModuleIndex {
  const modules = new Map<string, { path: string; deps: string[] }>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    modules.set(moduleName(path), { path, deps });
  }
  const builtin = new Set(modulesBuiltin.split("\n").map((l) => l.trim()).filter(Boolean).map(moduleName));
  return { modules, builtin };
}

/**
 * The files to load, dependencies first, each once. A wanted module that is neither a file nor
 * built in is a LabError naming it (that kernel cannot serve /dev/kvm or the host's files).
 */
export function moduleLoadOrder(index: ModuleIndex, wanted: readonly string[] = LAB_MODULES): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: readonly string[]): void => {
    const n = name.replaceAll("-", "_");
    if (seen.has(n)) return;
    seen.add(n);
    const m = index.modules.get(n);
    if (!m) {
      if (index.builtin.has(n)) return;
      throw new LabError(
        `kernel module ${n} is neither a module file nor built in${chain.length ? ` (needed by ${chain.join(" → ")})` : ""}`,
        "use a kernel built with KVM_AMD, VIRTIO_PCI, NET_9P_VIRTIO, 9P_FS and OVERLAY_FS (as modules or built in)",
      );
    }
    for (const d of m.deps) visit(moduleName(d), [...chain, n]);
    order.push(m.path);
  };
  for (const w of wanted) visit(w, []);
  return order;
}
