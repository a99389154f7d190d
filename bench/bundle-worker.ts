import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChildProcess, spawn } from "node:child_process";
import { isAlive } from "../local/control-state";
import { buildWorkerBundle } from "../worker/build";
import { WORKER_NODE_FLAGS } from "../worker/contract";
import { track } from "./children";
import { CREDENTIALS, REGION } from "./messages";

const TMP_PREFIX = "kiln-bench-";

/**
 * The worker bundle built into a directory of the bench's own (dist/worker belongs to
 * `npm run build:worker` and the tests), removed afterwards, even when the bench is stopped.
 */
export async function withBundle<T>(use: (bundle: string) => Promise<T>): Promise<T> {
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
    return await use(await buildWorkerBundle(path.join(tmp, "worker")));
  } finally {
    process.removeListener("exit", removeTmp);
    removeTmp();
  }
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
