import type { ConsumerStats } from "./consumer";

/** What the handler pool and its threads say to each other (worker/handler-pool.ts, handler-thread.ts). */
export interface ThreadError {
  name: string;
  message: string;
  stack?: string;
  /** An SQS error's code (the query protocol's), for telling a missing queue. */
  code?: string;
}

/** How a thread consumes: the Consumer's options, and the SQS client's. */
export interface ThreadConsumeOptions {
  queueUrl: string;
  /** Slots it may ever fill (MAX_WORKERS): its share, set in shared memory, is what it fills now. */
  concurrency: number;
  maxMessages: number;
  waitTimeSeconds: number;
  visibilityTimeout: number;
  processingTimeoutMs: number;
  retryDelaySeconds: number;
  region?: string;
  endpoint?: string;
  /** Messages it takes before it drains and is replaced (WORKER_MAX_MESSAGES). */
  budget?: number;
  /** It starts no message while the worker's resident memory is above this (WORKER_MAX_RSS_MB). */
  maxRssBytes?: number;
}

export interface ThreadData {
  modulePath: string;
  index: number;
  consume: ThreadConsumeOptions;
  /** How long a handler may go on after its abort signal before the thread stops taking messages. */
  abortGraceMs: number;
  slots: SharedArrayBuffer;
  threads: number;
  /** Holders in the slot count, and which one is this thread's. */
  holders: number;
  holder: number;
  ledger: SharedArrayBuffer;
  ledgerCapacity: number;
}

export type ToThread =
  | { t: "start" }
  /** Stop receiving, finish what is in flight within `ms` (what is left goes back), then say "drained". */
  | { t: "drain"; ms: number }
  /** Abort every handler now: the drain's end came early (a second signal). */
  | { t: "hurry"; why: string }
  /** Answered with "pong" unless the thread's event loop is blocked (a synchronous handler). */
  | { t: "ping" };

/** A message as the main thread logs it: its id, receive count and smoke probe. */
export interface MessageNote {
  id?: string;
  receives: number;
  smoke?: string;
}

export interface ThreadEvents {
  processed: [MessageNote, number][];
  failed: [MessageNote, ThreadError, number][];
  released: MessageNote[];
  polled: number;
  errors: [string, ThreadError][];
  /** Deletes SQS acknowledged since the last report. */
  deleted: number;
  handled: number;
  openReceives: number;
  heapBytes?: number;
  /** Its consumer's counts so far. */
  stats?: ConsumerStats;
}

export type FromThread =
  | { t: "ready" }
  | { t: "load-error"; error: ThreadError }
  /** What happened since the last report: one post a turn at most. */
  | ({ t: "events" } & ThreadEvents)
  /** A handler went on past its abort signal and grace: the thread takes no more messages. */
  | { t: "ignored"; message: MessageNote; reason: ThreadError }
  /** Only messages that would not stop are left in it: end it. */
  | { t: "stuck" }
  /** An exception no handler caught (a throw from a timer): it drains and asks to be replaced. */
  | { t: "crashed"; error: ThreadError }
  /** Its budget is taken and finished: it drains and asks to be replaced. */
  | { t: "spent" }
  /** Drained: nothing of it is left hidden; it may be ended. */
  | { t: "drained" }
  | { t: "warn"; msg: string; error: ThreadError }
  | { t: "pong" };
