import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChildProcess, spawn } from "node:child_process";
import { isAlive } from "../local/control-state";
import { build } from "esbuild";
import { buildWorkerBundle, HANDLER_THREAD_ENTRY, NODE_BUNDLE, ROOT } from "../worker/build";
import { WORKER_NODE_FLAGS } from "../worker/contract";
import { track } from "./children";
import { CREDENTIALS, REGION } from "./messages";

const TMP_PREFIX = "kiln-bench-";

export interface Bundles {
  /** kiln-worker.js, as `npm run build:worker` makes it for the AMI. */
  worker: string;
  /** contender-process.js: the throughput contenders, bundled the same way (see buildContenderBundle). */
  contenders: string;
}

/**
 * The worker bundle and the contenders' bundle built into a directory of the bench's own
 * (dist/worker belongs to `npm run build:worker` and the tests), removed afterwards, even when the
 * bench is stopped.
 */
export async function withBundle<T>(use: (bundles: Bundles) => Promise<T>): Promise<T> {
  // A bench killed outright (SIGKILL, a closed terminal) leaves its bundle directory behind; the next run removes those whose bench is gone.
  for (const name of fs.readdirSync(os.tmpdir())) {
    const pid = new RegExp(`^${TMP_PREFIX}(\\d+)-`).exec(name)?.[1];
    if (pid && !isAlive(Number(pid))) fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${TMP_PREFIX}${process.pid}-`));
  // Ctrl-C ends the bench with process.exit, past the finally below.
  const removeTmp = () => fs.rmSync(tmp, { recursive: true, force: true });
  process.once("exit", removeTmp);
  try {
    const worker = await buildWorkerBundle(path.join(tmp, "worker"));
    const contenders = await buildContenderBundle(path.join(tmp, "contenders"));
    return await use({ worker, contenders });
  } finally {
    process.removeListener("exit", removeTmp);
    removeTmp();
  }
}

/**
 * bench/contender-process.ts (every contender: kiln's consumer and handler pool, sqs-consumer, the
 * bare loop) bundled as worker/build.ts bundles the worker, with the handler thread's script beside
 * it as in the worker's bundle. Measured from sources under tsx instead, kiln paid for a loader
 * production does not have: tsx keeps function names by wrapping every closure kiln makes per
 * message in a defineProperty call, a few microseconds a message the bundle never spends.
 */
async function buildContenderBundle(outDir: string): Promise<string> {
  await build({
    ...NODE_BUNDLE,
    entryPoints: { "contender-process": path.join(ROOT, "bench", "contender-process.ts"), ...HANDLER_THREAD_ENTRY },
    outdir: outDir,
    // bench/children.ts names tsx's loader for the processes that do run from sources (the emulator).
    external: ["tsx", "tsx/*"],
  });
  return path.join(outDir, "contender-process.js");
}

export interface BundleWorker {
  child: ChildProcess;
  /** The tail of what it printed, for a failure's diagnosis. */
  output(): string;
  /** Resolves when it has logged `msg` (its JSON lines), or rejects when it exits first. */
  logged(msg: string): Promise<void>;
  exited: Promise<number | null>;
}

/** The kiln-worker bundle under plain node, as systemd runs it, configured by `env` (the contract). */
export function startBundleWorker(bundle: string, env: Record<string, string>): BundleWorker {
  let output = "";
  const child = track(
    spawn(process.execPath, [...WORKER_NODE_FLAGS, bundle, "run"], {
      env: {
        PATH: process.env.PATH,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
        AWS_REGION: REGION,
        // An orphan (the bench killed with SIGKILL) recycles itself instead of running forever.
        WORKER_MAX_LIFETIME: "1800",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const waiting = new Map<string, () => void>();
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-8_000);
    for (const [msg, resolve] of waiting) if (output.includes(`"msg":"${msg}"`)) resolve();
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    logged: (msg) =>
      new Promise<void>((resolve, reject) => {
        if (output.includes(`"msg":"${msg}"`)) return resolve();
        waiting.set(msg, () => (waiting.delete(msg), resolve()));
        void exited.then((code) => reject(new Error(`the worker exited (${code}) before it logged "${msg}":\n${output}`)));
      }),
  };
}
