import { performance } from "node:perf_hooks";
import type { DeleteMessageBatchResult, ReceiveMessageResult } from "@aws-sdk/client-sqs";
import { fork } from "node:child_process";
import { WORKER_NODE_FLAGS } from "../worker/contract";
import { stopChild, track } from "./children";
import { BareShape, ContenderName, KILN_WORKLOAD, prepareContender, RunningContender } from "./contenders";
import { indexOf, remaining, sqsClient, Workload } from "./messages";

/**
 * One contender on one pre-filled queue, in a fresh process: each starts with a cold heap and JIT,
 * and the bench's own bookkeeping (filling queues, printing) never runs on the measured event loop.
 */
export interface ContenderJob {
  contender: ContenderName;
  workload: Workload;
  inFlight: number;
  bare: BareShape;
  waitTimeSeconds: number;
  endpoint: string;
  queueUrl: string;
  /** Timed messages, after `warmup` untimed ones: the queue holds both. */
  messages: number;
  /**
   * Messages handled before the clock starts: a worker runs for hours, so what counts is its
   * steady state, not how fast a cold process's JIT and the consumer's read-ahead warm up.
   */
  warmup: number;
  /** Give up when no delete has been acknowledged for this long. */
  stallTimeoutMs: number;
}

/** What the contender's process is sent: the job, and where kiln's handler module is (paths in a bundle are not its sources'). */
interface ContenderOrder extends ContenderJob {
  kilnWorkload: string;
}

export interface ContenderResult {
  /** From the warm-up's last delete (or the start) until the last message's delete was acknowledged. */
  ms: number;
  messagesPerSecond: number;
  deleted: number;
  handled: number;
  /** Handler runs on a message already handled once: should be 0. */
  duplicates: number;
  /** Messages still in the queue after the contender stopped: should be 0. */
  leftInQueue: number;
  stalled: boolean;
  errors: number;
  firstErrors: string[];
  /** Successful SQS requests by command, and messages per receive: where the time went. */
  requests: Record<string, number>;
  messagesPerReceive: number;
  /** CPU (user + system) this process spent per message: the consumer's own cost, which other load on the machine barely moves. */
  cpuUsPerMessage: number;
  /** Mean wall time inside the handler, for the ideal and for Little's law. */
  meanHandlerMs: number;
  rssMb: number;
}

/**
 * Runs one contender in a fresh process from `bundle` (bench/bundle-worker.ts), the way the worker
 * runs in production: plain node, the contenders' code bundled by esbuild, and the worker's Node
 * flags (WORKER_NODE_FLAGS), which every contender gets alike so that only the code differs.
 */
export async function runContenderProcess(job: ContenderJob, bundle: string): Promise<ContenderResult> {
  const child = track(fork(bundle, [], { execArgv: [...WORKER_NODE_FLAGS], stdio: ["ignore", "inherit", "inherit", "ipc"] }));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const order: ContenderOrder = { ...job, kilnWorkload: KILN_WORKLOAD };
  try {
    return await new Promise<ContenderResult>((resolve, reject) => {
      child.once("message", (m) => resolve(m as ContenderResult));
      child.once("exit", (code, signal) => reject(new Error(`${job.contender} process exited (${signal ?? code}) without a result`)));
      child.send(order);
    });
  } finally {
    // It exits by itself once it has reported; a signal is for one that hangs or failed.
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
    await stopChild(child);
  }
}

async function measure(job: ContenderOrder): Promise<ContenderResult> {
  const sqs = sqsClient(job.endpoint);
  const requests: Record<string, number> = {};
  let deleted = 0;
  let received = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const total = job.warmup + job.messages;
  /** Counters when the clock started: the result counts only what came after. */
  let clock: { t: number; cpu: NodeJS.CpuUsage; deleted: number; received: number; handled: number; handlerMs: number; requests: Record<string, number> } | undefined;
  /** Requests and receipts this process's client saw, plus those a contender made on clients of its own (kiln's threads). */
  let contender: RunningContender | undefined;
  const counts = () => {
    const own = contender?.requests?.();
    const all = { ...requests };
    for (const [k, v] of Object.entries(own?.requests ?? {})) all[k] = (all[k] ?? 0) + v;
    return { requests: all, received: received + (own?.received ?? 0) };
  };
  const startClock = () => {
    const c = counts();
    clock = { t: performance.now(), cpu: process.cpuUsage(), deleted, received: c.received, handled, handlerMs, requests: c.requests };
    return clock;
  };
  const countDeleted = (n: number) => {
    deleted += n;
    if (!clock && job.warmup > 0 && deleted >= job.warmup) startClock();
    if (deleted >= total) finish();
  };

  // Counting acknowledged deletes in the client itself ends every contender's clock at the same
  // event, whether it deletes one by one, in batches, or through a batcher with a linger.
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const command = context.commandName ?? "unknown";
      requests[command] = (requests[command] ?? 0) + 1;
      if (command === "ReceiveMessageCommand") received += (result.output as ReceiveMessageResult).Messages?.length ?? 0;
      if (command === "DeleteMessageCommand") countDeleted(1);
      if (command === "DeleteMessageBatchCommand") countDeleted((result.output as DeleteMessageBatchResult).Successful?.length ?? 0);
      return result;
    },
    { step: "initialize", name: "benchCountRequests" },
  );

  const seen = new Uint8Array(total);
  let handled = 0;
  let duplicates = 0;
  let handlerMs = 0;
  let errors = 0;
  const firstErrors: string[] = [];
  let stopping = false;

  // Warms the client (credentials, connection) outside the clock, equally for every contender.
  const before = await remaining(sqs, job.queueUrl);
  if (before !== total) throw new Error(`queue holds ${before} messages, expected ${total}`);
  for (const k of Object.keys(requests)) delete requests[k];

  const handledIds = new Set<string>();
  contender = await prepareContender(job.contender, {
    sqs,
    endpoint: job.endpoint,
    queueUrl: job.queueUrl,
    inFlight: job.inFlight,
    bare: job.bare,
    waitTimeSeconds: job.waitTimeSeconds,
    workload: job.workload,
    kilnWorkload: job.kilnWorkload,
    handle: async (message, run) => {
      if (seen[indexOf(message.Body ?? "")]++) duplicates++;
      const t = performance.now();
      await run(message);
      handlerMs += performance.now() - t;
      handled++;
    },
    handledElsewhere: (id, ms) => {
      if (handledIds.has(id)) duplicates++;
      else handledIds.add(id);
      handlerMs += ms;
      handled++;
    },
    deletedElsewhere: countDeleted,
    onError: (e, operation) => {
      // Aborted long polls and the like while stopping are not the contender's errors.
      if (stopping) return;
      errors++;
      if (firstErrors.length < 3) firstErrors.push(`${operation}: ${e.message}`);
    },
  });

  if (job.warmup === 0) startClock();
  contender.start();

  let stalled = false;
  let lastDeleted = 0;
  let lastProgress = performance.now();
  const watchdog = setInterval(() => {
    if (deleted !== lastDeleted) [lastDeleted, lastProgress] = [deleted, performance.now()];
    else if (performance.now() - lastProgress > job.stallTimeoutMs) {
      stalled = true;
      finish();
    }
  }, 250);
  await finished;
  // A stall during the warm-up leaves the clock unstarted: the run is reported as stalled anyway.
  const from = clock ?? startClock();
  const ms = performance.now() - from.t;
  const cpu = process.cpuUsage(from.cpu);
  const timed = { deleted: Math.min(deleted, total) - from.deleted, handled: handled - from.handled };
  const end = counts();
  const timedRequests = Object.fromEntries(Object.entries(end.requests).map(([k, v]) => [k, v - (from.requests[k] ?? 0)]));
  const rssMb = process.memoryUsage.rss() / 2 ** 20;
  clearInterval(watchdog);
  stopping = true;
  await contender.stop();
  const leftInQueue = await remaining(sqs, job.queueUrl);
  sqs.destroy();
  return {
    ms,
    messagesPerSecond: (timed.deleted / ms) * 1000,
    deleted,
    handled,
    duplicates,
    leftInQueue,
    stalled,
    errors,
    firstErrors,
    requests: timedRequests,
    messagesPerReceive: (end.received - from.received) / Math.max(1, timedRequests.ReceiveMessageCommand ?? 0),
    cpuUsPerMessage: (cpu.user + cpu.system) / Math.max(1, timed.handled),
    meanHandlerMs: (handlerMs - from.handlerMs) / Math.max(1, timed.handled),
    rssMb,
  };
}

if (require.main === module) {
  // The bench went away without stopping us: nothing is left to report to.
  process.once("disconnect", () => process.exit(1));
  process.once("message", (job) => {
    measure(job as ContenderOrder).then(
      (result) => process.send!(result, () => process.exit(0)),
      (e: Error) => {
        process.stderr.write(`contender ${(job as ContenderJob).contender}: ${e.stack ?? e.message}\n`);
        process.exit(1);
      },
    );
  });
}
