import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { SendMessageBatchCommand, SQSClient, CreateQueueCommand } from "@aws-sdk/client-sqs";
import { startBundleWorker } from "./bundle-worker";
import { stopChild } from "./children";
import { deleteQueue, depth, VISIBILITY_TIMEOUT_S } from "./messages";

/**
 * The seeds' own worker on kiln: a Python program with about a second of imports and 300 ms of CPU
 * per message (worker/examples/file-processor/app.py), on one slot (MAX_WORKERS=1, as the seeds
 * tuned a t3.medium). As an app (WORKER_APP) it pays its imports once; as a command per message
 * (WORKER_COMMAND, the same program with --once) it pays them every time.
 */
export const APP_EXAMPLE = path.join(__dirname, "..", "worker", "examples", "file-processor", "app.py");
export const WORK_MS = 300;
export const IMPORT_SECONDS = 1;
/** One slot at WORK_MS of CPU a message. */
export const APP_IDEAL_PER_MINUTE = 60_000 / WORK_MS;
export const APP_TARGET = 0.95;

export type AppMode = "app" | "command";

export interface AppRun {
  mode: AppMode;
  messages: number;
  perMinute: number;
  /** From the worker's start until it took its first message (the app's imports, in app mode). */
  startSeconds: number;
}

export interface AppResult {
  runs: AppRun[];
  /** Median messages a minute of each mode. */
  median: Record<AppMode, number>;
}

const MODE_ENV: Record<AppMode, Record<string, string>> = {
  app: { WORKER_APP: `python3 ${APP_EXAMPLE}`, WORKER_APP_HEALTH_PATH: "/health" },
  command: { WORKER_COMMAND: `python3 ${APP_EXAMPLE} --once` },
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];

async function queueOf(sqs: SQSClient, label: string, n: number): Promise<string> {
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: `bench-${label}-${process.pid}-${Date.now()}`, Attributes: { VisibilityTimeout: String(VISIBILITY_TIMEOUT_S) } }))).QueueUrl!;
  for (let i = 0; i < n; i += 10) {
    const entries = Array.from({ length: Math.min(10, n - i) }, (_, j) => ({ Id: String(j), MessageBody: JSON.stringify({ bucket: "uploads", key: `scan-${i + j}.pdf` }) }));
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
  }
  return url;
}

/** One run: a pre-filled queue, the worker bundle as a process, the clock from its first message to the last delete. */
async function runOnce(o: { bundle: string; endpoint: string; sqs: SQSClient; mode: AppMode; messages: number }): Promise<AppRun> {
  const queueUrl = await queueOf(o.sqs, `app-${o.mode}`, o.messages);
  const began = performance.now();
  const worker = startBundleWorker(o.bundle, {
    AWS_ENDPOINT_URL_SQS: o.endpoint,
    SQS_QUEUE_URL: queueUrl,
    MAX_WORKERS: "1",
    SQS_WAIT_TIME: "20",
    LOG_LEVEL: "warn",
    WORK_MS: String(WORK_MS),
    IMPORT_SECONDS: String(IMPORT_SECONDS),
    ...MODE_ENV[o.mode],
  });
  try {
    // The clock starts with the first message taken, not with the worker's own start: in app mode
    // the app's imports come before that, once; in command mode every message pays them.
    let first: number | undefined;
    for (;;) {
      await sleep(20);
      if (worker.child.exitCode !== null) throw new Error(`the worker exited (${worker.child.exitCode}):\n${worker.output()}`);
      const d = await depth(o.sqs, queueUrl);
      if (first === undefined && d.visible < o.messages) first = performance.now();
      if (d.visible + d.inFlight + d.delayed === 0) break;
    }
    const ms = performance.now() - (first ?? began);
    return { mode: o.mode, messages: o.messages, perMinute: (o.messages / ms) * 60_000, startSeconds: ((first ?? began) - began) / 1000 };
  } finally {
    await stopChild(worker.child, 30_000);
    await deleteQueue(o.sqs, queueUrl).catch(() => undefined);
  }
}

export async function runAppBench(o: {
  bundle: string;
  endpoint: string;
  sqs: SQSClient;
  messages: Record<AppMode, number>;
  repeats: number;
  log(line: string): void;
}): Promise<AppResult> {
  const runs: AppRun[] = [];
  for (let rep = 1; rep <= o.repeats; rep++) {
    for (const mode of ["app", "command"] as AppMode[]) {
      const r = await runOnce({ ...o, mode, messages: o.messages[mode] });
      o.log(`[app ${rep}/${o.repeats}] ${mode}: ${r.messages} in ${((r.messages / r.perMinute) * 60).toFixed(1)} s = ${r.perMinute.toFixed(1)}/min (first message after ${r.startSeconds.toFixed(1)} s)`);
      runs.push(r);
    }
  }
  const of = (mode: AppMode) => median(runs.filter((r) => r.mode === mode).map((r) => r.perMinute));
  return { runs, median: { app: of("app"), command: of("command") } };
}
