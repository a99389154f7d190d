import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BUNDLE_DIR, buildWorkerBundle, ROOT } from "../../worker/build";
import { CREDENTIALS, REGION } from "./sqs";

export const RECORD_HANDLER = path.join(__dirname, "handlers", "record.js");
export const BUNDLE = path.join(BUNDLE_DIR, "kiln-worker.js");

/** The worker as it ships (the bundle, plain node) and as it runs from a checkout (sources, tsx). */
export const FLAVOURS = {
  bundle: [BUNDLE],
  sources: ["--require", require.resolve("tsx/cjs"), path.join(ROOT, "worker", "cli.ts")],
} as const;
export type Flavour = keyof typeof FLAVOURS;

export interface WorkerProcess {
  child: ChildProcess;
  stdout: () => string;
  exited: Promise<number | null>;
}

let built: Promise<string> | undefined;

/** Builds the bundle once per test run, as `npm run build:worker` does, so tests run what ships. */
export function ensureBundle(): Promise<string> {
  built ??= buildWorkerBundle();
  return built;
}

export function startWorker(flavour: Flavour, env: Record<string, string>, args = ["run"]): WorkerProcess {
  const child = spawn(process.execPath, [...FLAVOURS[flavour], ...args], {
    env: {
      PATH: process.env.PATH,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_REGION: REGION,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, stdout: () => out, exited };
}

/** A scratch file the record handler appends to; read as lines. */
const recordDirs = new Set<string>();
// A test that fails before its remove() still leaves nothing in /tmp once the run ends.
process.once("exit", () => {
  for (const dir of recordDirs) fs.rmSync(dir, { recursive: true, force: true });
});

export function recordFile(): { file: string; lines: () => string[]; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-record-"));
  recordDirs.add(dir);
  const file = path.join(dir, "record.log");
  fs.writeFileSync(file, "");
  return {
    file,
    lines: () => fs.readFileSync(file, "utf8").split("\n").filter(Boolean),
    remove: () => fs.rmSync(path.dirname(file), { recursive: true, force: true }),
  };
}

/**
 * The environment of a worker run in this process on the test SQS, with the record handler, which
 * reads RECORD_FILE and HANDLER_MS from the environment its handler threads get (this one). They
 * are set in process.env too, for tests that call the handler directly; `forgetInProcessHandler`
 * unsets them after the suite.
 */
export function inProcessWorkerEnv(
  sqs: { endpoint: string },
  queueUrl: string,
  record: { file: string },
  handlerMs: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  Object.assign(process.env, { RECORD_FILE: record.file, HANDLER_MS: handlerMs });
  return {
    SQS_QUEUE_URL: queueUrl,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    WORKER_HANDLER: RECORD_HANDLER,
    RECORD_FILE: record.file,
    HANDLER_MS: handlerMs,
    SQS_WAIT_TIME: "1",
    ...extra,
  };
}

export function forgetInProcessHandler(): void {
  delete process.env.RECORD_FILE;
  delete process.env.HANDLER_MS;
}
