import * as fs from "node:fs";
import * as path from "node:path";
import { build } from "esbuild";

/**
 * `npm run build:worker`: the bundle the AMI carries. One directory, runnable with plain `node`
 * and no node_modules: kiln-worker.js (the CLI with every dependency inlined), handler-thread.js, the systemd units and the example handlers.
 */
export const ROOT = path.resolve(__dirname, "..");
export const BUNDLE_DIR = path.join(ROOT, "dist", "worker");

/**
 * How kiln's code is bundled to run under plain node: the worker's bundle, and the bench's
 * contenders, which are measured the way the worker runs. Paths in a bundle and its map are
 * relative to the repository, whatever the caller's cwd: the same sources make the same bytes,
 * which the image's content hash relies on.
 */
export const NODE_BUNDLE = { bundle: true, absWorkingDir: ROOT, platform: "node", target: "node20", format: "cjs", logLevel: "warning" } as const;

/** The handler threads' script (WORKER_HANDLER), bundled beside whatever starts them. */
export const HANDLER_THREAD_ENTRY = { "handler-thread": path.join(ROOT, "worker", "handler-thread.ts") };

export async function buildWorkerBundle(outDir = BUNDLE_DIR): Promise<string> {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const outfile = path.join(outDir, "kiln-worker.js");
  await build({
    ...NODE_BUNDLE,
    entryPoints: { "kiln-worker": path.join(ROOT, "worker", "cli.ts"), ...HANDLER_THREAD_ENTRY },
    outdir: outDir,
    sourcemap: "linked",
    legalComments: "none",
    banner: { js: "#!/usr/bin/env node" },
  });
  fs.chmodSync(outfile, 0o755);
  // The units, and the example handlers a stack can point WORKER_HANDLER at (Pulumi.dev.yaml does).
  for (const dir of ["systemd", "examples"]) {
    const from = path.join(ROOT, "worker", dir);
    if (fs.existsSync(from)) fs.cpSync(from, path.join(outDir, dir), { recursive: true });
  }
  return outfile;
}

if (require.main === module) {
  buildWorkerBundle().then(
    (file) => console.log(`built ${path.relative(ROOT, file)}`),
    (e: Error) => {
      console.error(e.message);
      process.exit(1);
    },
  );
}
