// `pnpm kvmx …`: rebuild what changed (turbo cache makes this a no-op when nothing did), quietly,
// then run the CLI with the given arguments. Build output is shown only when the build fails.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const turbo = join(root, "node_modules", ".bin", "turbo");
const build = spawnSync(turbo, ["run", "build", "--filter=kvmx...", "--output-logs=errors-only"], {
  cwd: root,
  encoding: "utf8",
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1", TURBO_NO_UPDATE_NOTIFIER: "1" },
});
if (build.status !== 0) {
  process.stderr.write(build.stdout + build.stderr);
  process.stderr.write("kvmx: the build failed (output above)\n");
  process.exit(70);
}
const cli = spawnSync(process.execPath, [join(root, "apps", "cli", "bin", "kvmx.js"), ...process.argv.slice(2)], {
  stdio: "inherit",
});
process.exit(cli.status ?? 1);
