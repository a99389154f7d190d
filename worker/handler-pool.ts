import { EventEmitter } from "node:events";
import * as os from "node:os";
import * as path from "node:path";
import type { EventLoopUtilization } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import type { Message } from "@aws-sdk/client-sqs";
import { ProcessingTimeout, ReleaseMessage, type StopSignal } from "./consumer";
import type { FromThread, ThreadError, ToThread } from "./handler-protocol";
import type { Logger } from "./log";
import { HandlerOutput } from "./output";
import { HandlerRuntime, RecycleUnit, RuntimeEvents, SlotWaiters } from "./runtime";
import { WorkerConfigError } from "./settings";

export interface HandlerPoolOptions {
  modulePath: string;
  /** Messages in the pool at once (MAX_WORKERS). */
  maxWorkers: number;
  /** Threads they are spread over; a thread runs several async handlers at once. */
  threads: number;
  /** How long a handler may go on after its abort signal before its thread is ended. */
  abortGraceMs: number;
  log: Logger;
  env?: NodeJS.ProcessEnv;
}

/**
 * Threads for MAX_WORKERS handlers: one a slot up to the machine's cores, so that a handler spinning
 * synchronously stops no other slot; past that, slots share threads (more threads than cores buy
 * nothing for CPU-bound handlers, and async ones share a thread well: see PACKING).
 */
export function handlerThreads(maxWorkers: number, cpus = os.availableParallelism()): number {
  return Math.max(1, Math.min(maxWorkers, cpus));
}

/** A thread that does not answer a ping this fast is blocked by a synchronous handler. */
const PING_TIMEOUT_MS = 250;

/**
 * Where slots share threads, messages pack into one thread while the handlers' threads are mostly
 * idle (async handlers waiting on I/O), and spread evenly over the threads once they are busy
 * (handlers that compute). Every post to a sleeping thread, and every answer back, wakes a thread:
 * a receive's batch in one thread costs one wake-up each way instead of one per thread, the largest
 * cost kiln adds to a cheap handler. `load` is the threads' event-loop utilisation summed (in cores),
 * measured every `windowMs`; the gap between the thresholds keeps the mode from flapping.
 */
const PACKING = { packBelow: 0.3, spreadAbove: 0.6, windowMs: 100 };

interface Job {
  id: number;
  message: Message;
  resolve: () => void;
  reject: (e: Error) => void;
  /** Set once its abort signal fired: the reason it fails with if its thread has to go. */
  abortedWith?: Error;
  graceTimer?: NodeJS.Timeout;
}

/** The thread's script: the bundle ships it beside kiln-worker.js; from sources it runs through tsx. */
function threadScript(): { script: string; eval: boolean } {
  const entry = path.join(__dirname, `handler-thread${path.extname(__filename)}`);
  if (!entry.endsWith(".ts")) return { script: entry, eval: false };
  const tsx = "tsx/cjs";
  return { script: `require(${JSON.stringify(require.resolve(tsx))}); require(${JSON.stringify(entry)});`, eval: true };
}

class ThreadExited extends Error {}

const asError = (e: ThreadError) => Object.assign(new Error(e.message), { name: e.name, stack: e.stack ?? e.message });

class HandlerThread implements RecycleUnit {
  readonly worker: Worker;
  readonly jobs = new Map<number, Job>();
  readonly startedAt = Date.now();
  handled = 0;
  ready = false;
  /** Takes no more messages: being recycled, or holding a handler that ignored its abort signal. */
  retiring = false;
  gone = false;
  heapBytes = 0;
  rssBytes = 0;
  /** Settles when the module has loaded in this thread, or could not. */
  readonly loaded: Promise<void>;
  loadFailed!: (e: Error) => void;
  markReady!: () => void;
  /** Called whenever a message of its finishes (a retiring thread waits for its last). */
  onSettled?: () => void;
  pong?: () => void;
  private outbox: ToThread[] = [];
  private flushScheduled = false;
  private utilizationMark?: EventLoopUtilization;

  constructor(
    readonly index: number,
    o: HandlerPoolOptions,
  ) {
    this.loaded = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.loadFailed = reject;
    });
    // A replacement thread has nobody waiting on it: the pool reports its failure as fatal instead.
    this.loaded.catch(() => undefined);
    const { script, eval: isEval } = threadScript();
    this.worker = new Worker(script, {
      eval: isEval,
      workerData: { modulePath: o.modulePath },
      env: o.env ?? process.env,
      stdout: true,
      stderr: true,
    });
  }

  get label(): string {
    return `handler thread ${this.index}`;
  }

  memoryBytes(): number {
    return this.heapBytes;
  }

  /** How busy its event loop was (0 to 1) since the last time this was asked. */
  utilization(): number {
    const now = this.worker.performance.eventLoopUtilization();
    const since = this.utilizationMark ? this.worker.performance.eventLoopUtilization(now, this.utilizationMark).utilization : 0;
    this.utilizationMark = now;
    return since;
  }

  /** Posts made in the same turn travel as one message. */
  send(m: ToThread): void {
    const last = this.outbox[this.outbox.length - 1];
    if (m.t === "run" && last?.t === "run") last.jobs.push(...m.jobs);
    else this.outbox.push(m);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.gone) for (const out of this.outbox) this.worker.postMessage(out);
      this.outbox = [];
    });
  }

  /** Whether its event loop answers: false while a handler runs synchronously. */
  responsive(): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
      this.pong = () => (clearTimeout(timer), resolve(true));
      this.send({ t: "ping" });
    });
  }
}

/**
 * WORKER_HANDLER: the module runs in worker threads, loaded once per thread. The main thread only
 * receives, deletes and keeps time, so a handler that spins, ignores its abort signal or throws
 * from a timer can neither freeze the worker nor outlive its slot. Past its processing timeout and
 * a grace period, a handler's thread is ended: at once when the handler blocks it (a synchronous
 * loop; its other messages could not run either and go back to the queue), or once its other
 * messages have finished when it is only an abort signal being ignored. A fresh thread takes its
 * place, and the slot of a message that would not stop is never given to another before then.
 */
export class HandlerPool extends EventEmitter<RuntimeEvents> implements HandlerRuntime {
  readonly kind = "handler";
  private threads: HandlerThread[] = [];
  /** Replaced threads until they have stopped: their memory is not given back before then. */
  private readonly ending = new Set<HandlerThread>();
  private nextId = 1;
  private stopping = false;
  private readonly perThread: number;
  /** Consecutive thread deaths without a finished message: replacements wait longer each time. */
  private crashes = 0;
  private readonly waiters = new SlotWaiters();
  private packing = true;
  private loadMeasuredAt = 0;

  constructor(private readonly o: HandlerPoolOptions) {
    super();
    this.perThread = Math.ceil(o.maxWorkers / o.threads);
  }

  async start(): Promise<void> {
    const started = Array.from({ length: this.o.threads }, (_, i) => this.spawn(i));
    try {
      await Promise.all(started.map((t) => t.loaded));
    } catch (e) {
      await this.stop();
      // A module that exits while loading (process.exit) crashed, as it would have in the worker's
      // own process: systemd restarts that. One that throws will throw again: a configuration error.
      if (e instanceof ThreadExited) throw e;
      throw new WorkerConfigError("WORKER_HANDLER", `cannot be loaded from ${path.resolve(this.o.modulePath)}: ${(e as Error).message}`);
    }
  }

  capacity(): number {
    let slots = 0;
    for (const t of this.threads) if (t.ready && !t.retiring) slots += this.perThread;
    return Math.min(this.o.maxWorkers, slots);
  }

  units(): RecycleUnit[] {
    return [...this.threads, ...this.ending];
  }

  pids(): number[] {
    return [];
  }

  readonly process = (message: Message, signal: StopSignal): Promise<void> => {
    const thread = this.pick();
    return thread ? this.run(thread, message, signal) : this.runWhenFree(message, signal);
  };

  /** No thread has room (one is being replaced): the message waits for one, or for its signal. */
  private async runWhenFree(message: Message, signal: StopSignal): Promise<void> {
    let thread: HandlerThread | undefined;
    while (!(thread = this.pick())) await this.waiters.wait(signal);
    return this.run(thread, message, signal);
  }

  private run(thread: HandlerThread, message: Message, signal: StopSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const job: Job = { id: this.nextId++, message, resolve, reject };
      thread.jobs.set(job.id, job);
      thread.send({ t: "run", jobs: [{ id: job.id, message }] });
      signal.addEventListener("abort", () => this.abort(thread, job, signal.reason as Error), { once: true });
    });
  }

  recycle(unit: RecycleUnit, why: string): void {
    const thread = unit as HandlerThread;
    if (thread.retiring || thread.gone) return;
    thread.retiring = true;
    this.replaceWhenIdle(thread, why);
  }

  windDown(): void {
    this.stopping = true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.threads.map((t) => this.end(t, new ReleaseMessage("the worker stopped"))));
  }

  /** The thread for a message: the busiest with room while packing, else the least busy under its share. */
  private pick(): HandlerThread | undefined {
    const pack = this.shouldPack();
    let best: HandlerThread | undefined;
    for (const t of this.threads) {
      if (!t.ready || t.retiring || t.jobs.size >= (pack ? this.o.maxWorkers : this.perThread)) continue;
      if (!best || (pack ? t.jobs.size > best.jobs.size : t.jobs.size < best.jobs.size)) best = t;
    }
    return best;
  }

  /** Whether messages pack into one thread now (PACKING). Never where each slot has a thread of its own. */
  private shouldPack(): boolean {
    if (this.perThread === 1) return false;
    const now = Date.now();
    if (now - this.loadMeasuredAt >= PACKING.windowMs) {
      this.loadMeasuredAt = now;
      let load = 0;
      for (const t of this.threads) if (t.ready && !t.gone) load += t.utilization();
      if (load > PACKING.spreadAbove) this.packing = false;
      else if (load < PACKING.packBelow) this.packing = true;
    }
    return this.packing;
  }

  private abort(thread: HandlerThread, job: Job, reason: Error): void {
    if (!thread.jobs.has(job.id)) return;
    job.abortedWith = reason;
    thread.send({ t: "abort", id: job.id, reason: { name: reason.name, message: reason.message } });
    job.graceTimer = setTimeout(async () => {
      if (!thread.jobs.has(job.id) || thread.gone) return;
      const blocked = !(await thread.responsive());
      if (!thread.jobs.has(job.id) || thread.gone) return;
      const what = reason instanceof ProcessingTimeout ? "its processing timeout" : "its abort signal";
      const fields = { messageId: job.message.MessageId, thread: thread.index, graceSeconds: this.o.abortGraceMs / 1000 };
      if (blocked) {
        this.o.log.error(fields, `a handler is still running synchronously after ${what}: its thread is ended now`);
        this.replace(thread, `a handler blocked its thread (message ${job.message.MessageId})`);
      } else {
        this.o.log.error(fields, `a handler ignored ${what}: its thread takes no more messages and is replaced once the others in it finish`);
        thread.retiring = true;
        this.replaceWhenIdle(thread, `a handler ignored its abort signal (message ${job.message.MessageId})`);
      }
    }, this.o.abortGraceMs);
  }

  /** Replaces a retiring thread once every message in it has finished, but for ones that were told to stop and did not. */
  private replaceWhenIdle(thread: HandlerThread, why: string): void {
    const check = () => {
      for (const job of thread.jobs.values()) if (!job.abortedWith) return;
      this.replace(thread, why);
    };
    thread.onSettled = check;
    check();
  }

  private spawn(index: number): HandlerThread {
    const thread = new HandlerThread(index, this.o);
    this.threads[index] = thread;
    const output = new HandlerOutput(this.o.log, () => ({ source: "handler", thread: index }));
    output.attach(thread.worker.stdout, "stdout");
    output.attach(thread.worker.stderr, "stderr");
    thread.worker.on("message", (m: FromThread) => this.onMessage(thread, m));
    thread.worker.on("error", (e) => {
      if (!thread.ready) return this.failLoad(thread, e);
      // An exception no handler caught (a throw from a timer): the thread is gone, and which of its
      // messages threw cannot be told, so none of them is blamed.
      this.o.log.error({ thread: index, err: e.stack ?? e.message }, "a handler threw outside any message's promise: its thread is replaced");
      this.replace(thread, "its thread died of an uncaught exception");
    });
    thread.worker.on("exit", (code) => {
      if (thread.gone) return;
      if (!thread.ready) return this.failLoad(thread, new ThreadExited(`WORKER_HANDLER exited with ${code} while it was being loaded`));
      this.o.log.error({ thread: index, exitCode: code }, "a handler thread exited (process.exit in a handler?): it is replaced");
      this.replace(thread, `its thread exited with ${code}`);
    });
    return thread;
  }

  private failLoad(thread: HandlerThread, e: Error): void {
    thread.gone = true;
    void thread.worker.terminate();
    thread.loadFailed(e);
  }

  private onMessage(thread: HandlerThread, m: FromThread): void {
    switch (m.t) {
      case "ready":
        thread.ready = true;
        thread.markReady();
        this.emit("capacity");
        this.waiters.notify();
        return;
      case "load-error":
        this.failLoad(thread, asError(m.error));
        return;
      case "pong":
        thread.pong?.();
        return;
      case "warn":
        this.o.log.warn({ thread: thread.index, err: m.error.stack ?? m.error.message }, m.msg);
        return;
      case "results":
        if (m.heapBytes !== undefined) thread.heapBytes = m.heapBytes;
        for (const id of m.done) {
          const job = this.settled(thread, id);
          if (!job) continue;
          this.crashes = 0;
          job.resolve();
        }
        for (const f of m.failed) this.settled(thread, f.id)?.reject(asError(f.error));
        thread.onSettled?.();
        this.waiters.notify();
        return;
    }
  }

  /** A message of the thread's that finished: its job, unless it had already been given up on. */
  private settled(thread: HandlerThread, id: number): Job | undefined {
    const job = thread.jobs.get(id);
    if (!job) return undefined;
    thread.jobs.delete(id);
    clearTimeout(job.graceTimer);
    thread.handled++;
    return job;
  }

  /**
   * Ends a thread and starts its successor. Messages told to stop that did not fail with the reason
   * they were told; the others still in the thread go back to the queue untouched.
   */
  private replace(thread: HandlerThread, why: string): void {
    if (thread.gone) return;
    const died = !thread.retiring || [...thread.jobs.values()].some((j) => j.abortedWith);
    void this.end(thread, new ReleaseMessage(`its handler thread was stopped: ${why}`));
    this.emit("recycled", thread, why);
    if (this.stopping) return;
    if (died) this.crashes++;
    const delay = died ? Math.min(5_000, 100 * 2 ** Math.max(0, this.crashes - 1)) : 0;
    const start = () => {
      if (this.stopping) return;
      this.spawn(thread.index).loaded.catch((e: Error) =>
        this.emit("fatal", new Error(`a handler thread could not load WORKER_HANDLER again: ${e.message}`)),
      );
    };
    if (delay) setTimeout(start, delay).unref();
    else start();
  }

  private async end(thread: HandlerThread, orphaned: Error): Promise<void> {
    if (thread.gone) return;
    thread.gone = true;
    thread.ready = false;
    for (const job of thread.jobs.values()) {
      clearTimeout(job.graceTimer);
      job.reject(job.abortedWith ?? orphaned);
    }
    thread.jobs.clear();
    thread.retiring = true;
    this.ending.add(thread);
    await thread.worker.terminate();
    this.ending.delete(thread);
  }
}
