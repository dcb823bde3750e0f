import { labCacheDir } from "./cache-dir.js";
import { installMissingTools } from "./host-tools.js";
import { bootImages, type BootImages } from "./initramfs.js";
import { kernelSpecText, resolveKernel, type KernelSpec } from "./kernel-source.js";
import { labExec, type LabExecResult } from "./lab-exec.js";
import { silent, type Progress } from "./progress.js";

export interface LabSetupOptions {
  readonly kernels: readonly KernelSpec[];
  readonly cacheDir?: string;
  readonly progress?: Progress;
  /** Boot each kernel once and check that /dev/kvm appears (default true). */
  readonly check?: boolean;
  readonly cpu?: string;
}

export interface LabSetupResult {
  readonly installed: readonly string[];
  readonly kernels: readonly { readonly spec: string; readonly images: BootImages; readonly check?: LabExecResult }[];
}

/**
 * `kvmx lab setup`: installs the missing host tools (apt-get), fetches each kernel into the cache,
 * builds its boot images, and boots it once to see /dev/kvm. Everything already in place is reused.
 */
export async function labSetup(o: LabSetupOptions): Promise<LabSetupResult> {
  const progress = o.progress ?? silent;
  const cacheDir = o.cacheDir ?? labCacheDir();
  const installed = installMissingTools(progress).map((t) => t.debianPackage);
  const kernels: { spec: string; images: BootImages; check?: LabExecResult }[] = [];
  for (const spec of o.kernels) {
    const kernel = resolveKernel(spec, cacheDir, progress);
    const images = bootImages(kernel, cacheDir, progress);
    if (images.reused) progress(`${kernel.version}: boot images in the cache are up to date`);
    let check: LabExecResult | undefined;
    if (o.check ?? true) {
      check = await labExec({ argv: ["/bin/true"], cwd: "/", env: { PATH: "/usr/bin:/bin" }, kernel: spec, cacheDir, progress, allowFetch: false, ...(o.cpu ? { cpu: o.cpu } : {}) });
    }
    kernels.push({ spec: kernelSpecText(spec), images, ...(check ? { check } : {}) });
  }
  return { installed, kernels };
}
