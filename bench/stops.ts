import * as path from "node:path";
import { performance } from "node:perf_hooks";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { startBundleWorker } from "./bundle-worker";
import { stopChild } from "./children";
import { startLatencyProxy } from "./latency-proxy";
import { deleteQueue, depth, filledQueue } from "./messages";

/**
 * SIGTERM at random points, as systemd, a deploy or a scale-in sends it: the worker bundle on the
 * sleeping workload behind a proxy that adds a network's latency and, like SQS, keeps serving a
 * receive the worker gave up on. Whatever is in flight once the worker has exited is stranded:
 * hidden for the visibility timeout, a receive spent. The queue runs dry part-way, so some stops
 * find the worker busy and some find it idle in a long poll.
 */
export const STOP_WORKER = { MAX_WORKERS: "10", SQS_WAIT_TIME: "20", LOG_LEVEL: "info" };
const HANDLER = path.join(__dirname, "handlers", "workload.js");

export interface StopRound {
  /** Messages in flight at the signal: 0 means it stopped an idle worker. */
  busy: boolean;
  exitMs: number;
  exitCode: number | null;
  stranded: number;
}

export interface StopResult {
  latencyMs: number;
  rounds: StopRound[];
  stranded: number;
  medianExitMs: { all: number; busy: number; idle: number };
}

const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1] : NaN);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runStopBench(o: {
  bundle: string;
  endpoint: string;
  sqs: SQSClient;
  rounds: number;
  messages: number;
  latencyMs: number;
  log(line: string): void;
}): Promise<StopResult> {
  const proxy = await startLatencyProxy(o.endpoint, o.latencyMs);
  const queueUrl = await filledQueue(o.sqs, "stops", o.messages);
  const rounds: StopRound[] = [];
  try {
    for (let i = 1; i <= o.rounds; i++) {
      const worker = startBundleWorker(o.bundle, {
        AWS_ENDPOINT_URL_SQS: proxy.endpoint,
        SQS_QUEUE_URL: queueUrl,
        WORKER_HANDLER: HANDLER,
        BENCH_WORKLOAD: "sleep",
        ...STOP_WORKER,
      });
      try {
        await worker.logged("worker started");
        await sleep(200 + Math.random() * 2_800);
        const busy = (await depth(o.sqs, queueUrl)).inFlight > 0;
        const t = performance.now();
        worker.child.kill("SIGTERM");
        const exitCode = await worker.exited;
        const exitMs = performance.now() - t;
        // No worker is running now: anything still hidden was handed to this one and never given back.
        const stranded = (await depth(o.sqs, queueUrl)).inFlight;
        rounds.push({ busy, exitMs, exitCode, stranded });
        o.log(`[stops ${i}/${o.rounds}] ${busy ? "busy" : "idle"}: exit ${exitCode} after ${(exitMs / 1000).toFixed(2)} s, ${stranded} stranded`);
      } finally {
        await stopChild(worker.child, 1_000);
      }
    }
  } finally {
    await proxy.stop();
    await deleteQueue(o.sqs, queueUrl).catch(() => undefined);
  }
  const exits = (which?: boolean) => rounds.filter((r) => which === undefined || r.busy === which).map((r) => r.exitMs);
  return {
    latencyMs: o.latencyMs,
    rounds,
    stranded: rounds.reduce((s, r) => s + r.stranded, 0),
    medianExitMs: { all: median(exits()), busy: median(exits(true)), idle: median(exits(false)) },
  };
}
