import {
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  Message,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { Consumer as SqsConsumer } from "sqs-consumer";
import * as path from "node:path";
import { Consumer } from "../worker/consumer";
import { WORKER_DEFAULTS } from "../worker/contract";
import { HandlerPool, handlerThreads } from "../worker/handler-pool";
import { createLogger } from "../worker/log";
import { VISIBILITY_TIMEOUT_S, Workload, workloadHandler } from "./messages";

/** The workload as a WORKER_HANDLER module, for kiln: the other contenders call it in-process. */
export const KILN_WORKLOAD = path.join(__dirname, "handlers", "workload.js");

export const CONTENDERS = ["kiln", "sqs-consumer", "bare"] as const;
export type ContenderName = (typeof CONTENDERS)[number];

/** The bare loop's shape in a scenario: `loops` concurrent loops, each receiving `perReceive` at a time. */
export interface BareShape {
  loops: number;
  perReceive: number;
}

export interface ContenderSetup {
  sqs: SQSClient;
  queueUrl: string;
  /** Handlers running at once. */
  inFlight: number;
  bare: BareShape;
  waitTimeSeconds: number;
  workload: Workload;
  /** KILN_WORKLOAD as the bench's sources see it: a bundled contender's own __dirname is elsewhere. */
  kilnWorkload: string;
  /** The bench's bookkeeping around one message's handler: `run` is the handler itself. */
  handle(message: Message, run: (message: Message) => Promise<void>): Promise<void>;
  onError(error: Error, operation: string): void;
}

export interface RunningContender {
  /** Starts consuming; anything before (threads loading a module) is set-up, not timed. */
  start(): void;
  stop(): Promise<void>;
}

export async function prepareContender(name: ContenderName, setup: ContenderSetup): Promise<RunningContender> {
  switch (name) {
    case "kiln":
      return prepareKiln(setup);
    case "sqs-consumer":
      return startLater(() => startSqsConsumer(setup));
    case "bare":
      return startLater(() => startBareLoop(setup));
  }
}

function startLater(start: () => { stop(): Promise<void> }): RunningContender {
  let running: { stop(): Promise<void> } | undefined;
  return { start: () => void (running = start()), stop: async () => running?.stop() };
}

/**
 * kiln as worker/run.ts builds it: the Consumer with the worker's defaults, and the workload as a
 * WORKER_HANDLER module in the worker's handler threads, so every message pays the hop to its
 * thread and back as it does in production. The other contenders call the workload in-process.
 */
async function prepareKiln(s: ContenderSetup): Promise<RunningContender> {
  const pool = new HandlerPool({
    modulePath: s.kilnWorkload,
    maxWorkers: s.inFlight,
    threads: handlerThreads(s.inFlight),
    abortGraceMs: 5_000,
    log: createLogger("silent"),
    env: { ...process.env, BENCH_WORKLOAD: s.workload },
  });
  await pool.start();
  const consumer = new Consumer({
    sqs: s.sqs,
    queueUrl: s.queueUrl,
    concurrency: s.inFlight,
    maxMessages: WORKER_DEFAULTS.SQS_MAX_MESSAGES,
    waitTimeSeconds: s.waitTimeSeconds,
    visibilityTimeout: VISIBILITY_TIMEOUT_S,
    processingTimeoutMs: WORKER_DEFAULTS.PROCESSING_TIMEOUT * 1000,
    retryDelaySeconds: WORKER_DEFAULTS.WORKER_RETRY_DELAY,
    process: (message, signal) => s.handle(message, (m) => pool.process(m, signal)),
    capacity: () => pool.capacity(),
  });
  pool.on("capacity", () => consumer.wake());
  consumer.on("error", (e, operation) => s.onError(e, operation));
  consumer.on("failed", (_m, e) => s.onError(e, "handler"));
  return {
    start: () => consumer.start(),
    stop: async () => {
      await consumer.drain(5_000);
      await pool.stop();
    },
  };
}

/**
 * sqs-consumer v14 as the field configures it: batchSize 10, and since it has no concurrency
 * option (each poll's batch runs under Promise.all and the next poll waits for all of it), one
 * instance per 10 handlers in flight on a shared client.
 */
function startSqsConsumer(s: ContenderSetup): { stop(): Promise<void> } {
  const work = workloadHandler(s.workload);
  const instances = Array.from({ length: Math.ceil(s.inFlight / 10) }, () =>
    SqsConsumer.create({
      queueUrl: s.queueUrl,
      sqs: s.sqs,
      batchSize: Math.min(10, s.inFlight),
      waitTimeSeconds: s.waitTimeSeconds,
      visibilityTimeout: VISIBILITY_TIMEOUT_S,
      handleMessage: async (message) => {
        await s.handle(message, work);
        // v14 deletes only a message the handler returns.
        return message;
      },
    }),
  );
  for (const c of instances) {
    c.on("error", (e) => s.onError(e, "sqs-consumer"));
    c.on("processing_error", (e) => s.onError(e, "handler"));
    c.start();
  }
  return {
    stop: async () => {
      for (const c of instances) c.stop({ abort: true });
    },
  };
}

/**
 * The ceiling: nothing but SDK calls. Each loop receives, runs the handlers in parallel, and sends
 * the delete without waiting for it, so the next receive leaves at once. A receive takes no
 * per-call options (an abort signal would make the SDK resolve its middleware for every call, and
 * lose the client's cache): at the stop, the loops' last long polls are abandoned to the client's
 * destroy, which the bench does after counting what is left in the queue.
 */
function startBareLoop(s: ContenderSetup): { stop(): Promise<void> } {
  const work = workloadHandler(s.workload);
  let stopped = false;
  const deletes = new Set<Promise<unknown>>();
  const del = (messages: Message[]) =>
    messages.length === 1
      ? s.sqs.send(new DeleteMessageCommand({ QueueUrl: s.queueUrl, ReceiptHandle: messages[0].ReceiptHandle }))
      : s.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: s.queueUrl,
            Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
  const loop = async () => {
    while (!stopped) {
      let messages: Message[];
      try {
        const out = await s.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: s.queueUrl,
            MaxNumberOfMessages: s.bare.perReceive,
            WaitTimeSeconds: s.waitTimeSeconds,
          }),
        );
        messages = out.Messages ?? [];
      } catch (e) {
        if (stopped) return;
        s.onError(e as Error, "ReceiveMessage");
        continue;
      }
      if (stopped) return;
      if (messages.length === 0) continue;
      await Promise.all(messages.map((m) => s.handle(m, work)));
      const d: Promise<unknown> = del(messages)
        .catch((e: Error) => s.onError(e, "DeleteMessage"))
        .finally(() => deletes.delete(d));
      deletes.add(d);
    }
  };
  for (let i = 0; i < s.bare.loops; i++) void loop();
  return {
    stop: async () => {
      stopped = true;
      await Promise.all([...deletes]);
    },
  };
}
