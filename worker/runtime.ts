import type { EventEmitter } from "node:events";
import type { MessageSource, Processor, StopSignal } from "./consumer";
import type { WorkerConfigError } from "./settings";

/**
 * Where a message's handler runs: a pool of threads (WORKER_HANDLER), a process per message
 * (WORKER_COMMAND), or a pool of long-lived app processes (WORKER_APP). Each guarantees that its
 * processor settles only once the message's work has stopped, killing what will not stop.
 */
export interface HandlerRuntime extends EventEmitter<RuntimeEvents> {
  readonly kind: "handler" | "command" | "app";
  /** Gets ready for the first message; rejects with a WorkerConfigError when it never can. */
  start(): Promise<void>;
  /** Slots that can take a message now. */
  capacity(): number;
  /** Runs one message, for the main thread's Consumer (command and app modes). */
  readonly process?: Processor;
  /** A runtime that consumes the queue itself (handler threads): the worker drives it instead of a Consumer. */
  readonly source?: MessageSource;
  /** What can be recycled in place; none in command mode, where every message is a fresh process. */
  units(): RecycleUnit[];
  /** Replaces a unit once the messages it holds have finished. */
  recycle(unit: RecycleUnit, why: string): void;
  /** Processes it runs now (the memory limit counts them and their children). */
  pids(): number[];
  /** The worker is draining: what ends from now on is not replaced. */
  windDown(): void;
  /** After the drain: stops every thread and process it started, and waits until they are gone. */
  stop(): Promise<void>;
}

export interface RuntimeEvents {
  /** More slots are ready: the consumer may receive for them. */
  capacity: [];
  /** Found while running (a command that cannot be executed): the worker stops with EXIT.CONFIG_ERROR. */
  "config-error": [error: WorkerConfigError];
  /** The runtime cannot go on (no app process comes back): the worker stops with EXIT.CRASHED. */
  fatal: [error: Error];
  /** A unit was replaced, as asked or after it died. */
  recycled: [unit: RecycleUnit, why: string];
}

/** A handler thread or an app process: what the recycling limits measure and replace. */
export interface RecycleUnit {
  readonly label: string;
  /** Messages it finished since it started. */
  readonly handled: number;
  readonly startedAt: number;
  /** Being replaced: takes no more messages. */
  readonly retiring: boolean;
  /** An app process's pid; a thread has none. */
  readonly pid?: number;
  /** Resident memory of its process tree, as the recycler last measured it (app processes). */
  rssBytes: number;
  /** Its memory as far as can be told: a thread's heap, an app process tree's resident memory. */
  memoryBytes(): number;
}

/** A handler's failure, with the last lines it wrote to stderr for the line that reports it. */
export class HandlerFailed extends Error {
  constructor(
    message: string,
    readonly stderr: string[],
  ) {
    super(message);
    this.name = "HandlerFailed";
  }
}

/**
 * Messages received for a slot that went away before they arrived (its process died, its thread
 * was replaced): they wait for the next free slot instead of going back and spending a receive.
 * A wait ends with the message's abort signal (its processing timeout, the drain's end).
 */
export class SlotWaiters {
  private waiters = new Set<() => void>();

  wait(signal: StopSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const wake = () => {
        this.waiters.delete(wake);
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters.delete(wake);
        reject(signal.reason as Error);
      };
      this.waiters.add(wake);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** A slot may be free: every waiter looks again. */
  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
