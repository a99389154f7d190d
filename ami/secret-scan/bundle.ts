import * as path from "node:path";
import { build } from "esbuild";

const ROOT = path.resolve(__dirname, "..", "..");
let built: Promise<string> | undefined;

/**
 * The secret scan as one CommonJS program with secretlint and its recommended preset inlined, for
 * `node -` on the builder: it runs there with kiln's own Node, whatever the base image carries, and
 * never touches the builder's disk. Built once per process.
 */
export function secretScanProgram(): Promise<string> {
  built ??= build({
    entryPoints: [path.join(ROOT, "ami", "secret-scan", "main.ts")],
    bundle: true,
    write: false,
    absWorkingDir: ROOT,
    platform: "node",
    // The baked runtime (ami/payload.ts NODE_VERSION), and the Node that runs the tests.
    target: "node20",
    format: "cjs",
    legalComments: "none",
    logLevel: "warning",
  }).then((r) => r.outputFiles[0].text);
  return built;
}
