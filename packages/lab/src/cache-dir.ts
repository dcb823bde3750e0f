import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";

/**
 * Where the lab keeps kernels and initramfs images: $XDG_CACHE_HOME/kvmx/lab (XDG Base Directory
 * spec: a relative XDG_CACHE_HOME is ignored), else ~/.cache/kvmx/lab. KVMX_LAB_CACHE overrides both.
 */
export function labCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KVMX_LAB_CACHE) return env.KVMX_LAB_CACHE;
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), ".cache");
  return join(base, "kvmx", "lab");
}
