import {
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  Message,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { Consumer as SqsConsumer } from "sqs-consumer";
import * as path from "node:path";
import { WORKER_DEFAULTS } from "../worker/contract";
import { HandlerPool, handlerThreads } from "../worker/handler-pool";
import { createLogger } from "../worker/log";
import { CREDENTIALS, REGION, VISIBILITY_TIMEOUT_S, Workload, workloadHandler } from "./messages";

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
  /** Where `sqs` points: kiln's threads make clients of their own. */
  endpoint: string;
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
  /**
   * The same bookkeeping for a contender whose handlers and SDK clients are not on this thread
   * (kiln's handler threads): a message handled, and deletes SQS acknowledged.
   */
  handledElsewhere(id: string, ms: number): void;
  deletedElsewhere(count: number): void;
  onError(error: Error, operation: string): void;
}

export interface RunningContender {
  /** Starts consuming; anything before (threads loading a module) is set-up, not timed. */
  start(): void;
  stop(): Promise<void>;
  /** Requests by SDK command and messages received, for a contender whose requests the bench's client does not see. */
  requests?(): { requests: Record<string, number>; received: number };
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
 * kiln as worker/run.ts builds it: the workload as a WORKER_HANDLER module in the worker's handler
 * threads, each consuming the queue itself with the worker's defaults and its own SDK client (the
 * worker's configuration, as sqsClient gives the others), as in production. The other contenders
 * call the workload in-process.
 */
async function prepareKiln(s: ContenderSetup): Promise<RunningContender> {
  const pool = new HandlerPool({
    modulePath: s.kilnWorkload,
    maxWorkers: s.inFlight,
    threads: handlerThreads(s.inFlight),
    abortGraceMs: 5_000,
    consume: {
      queueUrl: s.queueUrl,
      maxMessages: WORKER_DEFAULTS.SQS_MAX_MESSAGES,
      waitTimeSeconds: s.waitTimeSeconds,
      visibilityTimeout: VISIBILITY_TIMEOUT_S,
      processingTimeoutMs: WORKER_DEFAULTS.PROCESSING_TIMEOUT * 1000,
      retryDelaySeconds: WORKER_DEFAULTS.WORKER_RETRY_DELAY,
      region: REGION,
      endpoint: s.endpoint,
    },
    log: createLogger("silent"),
    env: { ...process.env, BENCH_WORKLOAD: s.workload, AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey },
  });
  await pool.start();
  const source = pool.source;
  source.on("processed", (m, ms) => s.handledElsewhere(m.MessageId ?? "", ms));
  source.on("deleted", (n) => s.deletedElsewhere(n));
  source.on("error", (e, operation) => s.onError(e, operation));
  source.on("failed", (_m, e) => s.onError(e, "handler"));
  return {
    start: () => source.start(),
    stop: async () => {
      await source.drain(5_000);
      await pool.stop();
    },
    requests: () => {
      const st = pool.stats();
      return {
        requests: {
          ReceiveMessageCommand: st.receives,
          DeleteMessageBatchCommand: st.deleteBatches,
          ChangeMessageVisibilityBatchCommand: st.visibilityBatches,
        },
        received: st.received,
      };
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
