import type { Message } from "@aws-sdk/client-sqs";

/** What the handler pool and its threads say to each other (worker/handler-pool.ts, handler-thread.ts). */
export interface ThreadError {
  name: string;
  message: string;
  stack?: string;
}

export type ToThread =
  | { t: "run"; jobs: { id: number; message: Message }[] }
  | { t: "abort"; id: number; reason: ThreadError }
  /** Answered with "pong" unless the thread's event loop is blocked (a synchronous handler). */
  | { t: "ping" };

export type FromThread =
  | { t: "ready" }
  | { t: "load-error"; error: ThreadError }
  /** Messages that finished: the ids of those that succeeded, and those that failed with why. */
  | { t: "results"; done: number[]; failed: { id: number; error: ThreadError }[]; heapBytes?: number }
  | { t: "warn"; msg: string; error: ThreadError }
  | { t: "pong" };
