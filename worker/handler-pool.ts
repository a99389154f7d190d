import { EventEmitter } from "node:events";
import * as os from "node:os";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import type { Message, SQSClient } from "@aws-sdk/client-sqs";
import { Batcher, sqsDeletes, sqsVisibilityChanges } from "./batcher";
import { type ConsumerEvents, type ConsumerStats, type MessageSource, ProcessingTimeout } from "./consumer";
import type { FromThread, MessageNote, ThreadConsumeOptions, ThreadData, ThreadError, ThreadEvents, ToThread } from "./handler-protocol";
import { SMOKE_ATTRIBUTE } from "./contract";
import type { Logger } from "./log";
import { HandlerOutput } from "./output";
import type { HandlerRuntime, RecycleUnit, RuntimeEvents } from "./runtime";
import { retryDelay, WorkerConfigError } from "./settings";
import { EntryState, Ledger, type LedgerEntry, SlotCount } from "./slot-board";
import { staticCredentials, workerSqsClient } from "./sqs-client";

export interface HandlerPoolOptions {
  modulePath: string;
  /** Messages in the pool at once (MAX_WORKERS). */
  maxWorkers: number;
  /** Threads they are spread over; a thread runs several async handlers at once. */
  threads: number;
  /** How long a handler may go on after its abort signal before its thread is ended. */
  abortGraceMs: number;
  /** How each thread consumes (the queue, its timeouts, the recycling limits it keeps itself). */
  consume: Omit<ThreadConsumeOptions, "concurrency">;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** How often the threads are looked at: heartbeats, blocked handlers, packing. */
  superviseMs?: number;
}

/**
 * Threads for MAX_WORKERS handlers: one a slot up to the machine's cores, so that a handler spinning
 * synchronously stops no other slot; past that, slots share threads (more threads than cores buy
 * nothing for CPU-bound handlers, and async ones share a thread well: see PACKING).
 */
export function handlerThreads(maxWorkers: number, cpus = os.availableParallelism()): number {
  return Math.max(1, Math.min(maxWorkers, cpus));
}

/**
 * Where slots share threads, every slot goes to one thread while the handlers' threads are mostly
 * idle (async handlers waiting on I/O), and the slots spread evenly over the threads once they are
 * busy (handlers that compute). A thread consumes the queue itself: two threads sharing cheap
 * handlers pay for two SDK clients and two receive streams, and the bench measured them at 0.7-0.8
 * of the bare loop against 0.87-0.93 for one. `load` is the time handlers ran synchronously,
 * summed over the threads (in cores) every `windowMs`: a thread's own receiving and deleting keep
 * it busy too, but spreading that only costs more. The gap between the thresholds keeps the mode
 * from flapping. (A handler that computes after an `await` is counted as waiting.)
 */
const PACKING = { packBelow: 0.3, spreadAbove: 0.6, windowMs: 100 };

/** A thread whose heartbeat (every 50 ms) is this old is blocked by a handler running synchronously. */
const BLOCKED_AFTER_MS = 1_000;

/** How long past SQS_WAIT_TIME a receive may take to come back (the network, a slow SQS). */
const RECEIVE_MARGIN_MS = 5_000;

/** The thread's script: the bundle ships it beside kiln-worker.js; from sources it runs through tsx. */
function threadScript(): { script: string; eval: boolean } {
  const entry = path.join(__dirname, `handler-thread${path.extname(__filename)}`);
  if (!entry.endsWith(".ts")) return { script: entry, eval: false };
  const tsx = "tsx/cjs";
  return { script: `require(${JSON.stringify(require.resolve(tsx))}); require(${JSON.stringify(entry)});`, eval: true };
}

class ThreadExited extends Error {}

const asError = (e: ThreadError) =>
  Object.assign(new Error(e.message), { name: e.name, stack: e.stack ?? e.message }, e.code ? { Code: e.code } : {});

/** A message as run.ts logs it, from what a thread or its ledger tells of it. */
function messageOf(n: MessageNote): Message {
  return {
    MessageId: n.id,
    Attributes: { ApproximateReceiveCount: String(n.receives) },
    ...(n.smoke ? { MessageAttributes: { [SMOKE_ATTRIBUTE]: { DataType: "String", StringValue: n.smoke } } } : {}),
  };
}

/** The threads, as the worker's run loop drives a consumer (worker/run.ts). */
class PoolSource extends EventEmitter<ConsumerEvents> implements MessageSource {
  constructor(
    private readonly counts: { inFlight(): number; openReceives(): number },
    readonly start: () => void,
    readonly hurry: (why: string) => void,
    readonly drain: (ms: number) => Promise<{ released: number }>,
  ) {
    super();
  }

  get inFlight(): number {
    return this.counts.inFlight();
  }

  get openReceives(): number {
    return this.counts.openReceives();
  }

  /** Threads look at their share themselves (every 50 ms). */
  wake(): void {}
}

class HandlerThread implements RecycleUnit {
  readonly worker: Worker;
  readonly ledger: Ledger;
  readonly startedAt = Date.now();
  handled = 0;
  ready = false;
  /** Takes no more messages: being recycled, draining, or holding a handler that would not stop. */
  retiring = false;
  /** Its successor has been started (or none will be): it only has to go. */
  replaced = false;
  gone = false;
  drained = false;
  heapBytes = 0;
  rssBytes = 0;
  openReceives = 0;
  stats?: ConsumerStats;
  /** A handler in it would not stop, and why it was told to: its messages fail with that once it is ended. */
  ignored?: Error;
  /** When the main thread last kept a blocked thread's messages hidden. */
  extendedAt = 0;
  /** Settles when the module has loaded in this thread, or could not. */
  readonly loaded: Promise<void>;
  loadFailed!: (e: Error) => void;
  markReady!: () => void;
  onDrained?: () => void;
  /** Settles once it is ended and what it held is handed back. */
  readonly ended: Promise<void>;
  markEnded!: () => void;
  private loadMark?: { at: number; ms: number };

  constructor(
    readonly index: number,
    /** Its counter in the slot count. */
    readonly holder: number,
    o: HandlerPoolOptions,
    slots: SlotCount,
  ) {
    this.loaded = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.loadFailed = reject;
    });
    this.ended = new Promise<void>((resolve) => (this.markEnded = resolve));
    // A replacement thread has nobody waiting on it: the pool reports its failure as fatal instead.
    this.loaded.catch(() => undefined);
    // Every message it may hold: its slots and one receive's read-ahead, twice over, and what it
    // has finished but SQS has not yet acknowledged (a batch of deletes lingers up to 20 ms). A
    // message past that is not tracked: it is still handled, but a thread ended then strands it.
    this.ledger = Ledger.create(4 * (o.maxWorkers + o.consume.maxMessages) + 128);
    const { script, eval: isEval } = threadScript();
    const data: ThreadData = {
      modulePath: o.modulePath,
      index,
      consume: { ...o.consume, concurrency: o.maxWorkers },
      abortGraceMs: o.abortGraceMs,
      slots: slots.buffer,
      threads: slots.threads,
      holders: slots.holderCount,
      holder,
      ledger: this.ledger.buffer,
      ledgerCapacity: this.ledger.capacity,
    };
    this.worker = new Worker(script, { eval: isEval, workerData: data, env: o.env ?? process.env, stdout: true, stderr: true });
  }

  get label(): string {
    return `handler thread ${this.index}`;
  }

  memoryBytes(): number {
    return this.heapBytes;
  }

  /**
   * How busy its handlers kept it (0 to 1) since the last time this was asked: the time they ran
   * synchronously, not the thread's own receiving and deleting, which one thread does best alone.
   */
  handlerLoad(now: number): number {
    const ms = this.ledger.handlerMs;
    const load = this.loadMark && now > this.loadMark.at ? (ms - this.loadMark.ms) / (now - this.loadMark.at) : 0;
    this.loadMark = { at: now, ms };
    return load;
  }

  send(m: ToThread): void {
    if (!this.gone) this.worker.postMessage(m);
  }
}

/**
 * WORKER_HANDLER: the module runs in worker threads, loaded once per thread, and each thread
 * consumes the queue itself (worker/handler-thread.ts): a message is received, handled and deleted
 * on one event loop, and the main thread is never on its way. The main thread watches them through
 * shared memory (worker/slot-board.ts) and decides what only it can: how the MAX_WORKERS slots are
 * shared, when a thread is recycled, and when one must be ended because a handler blocks it (a
 * synchronous loop past its timeout). A thread that is ended or dies cannot hand its messages back,
 * so the main thread does, from the thread's ledger: the one that would not stop fails, the others
 * go back to the queue untouched. A handler that ignores its abort signal keeps its slot (and its
 * thread, which takes nothing more and is replaced at once) until the thread is ended once the
 * others in it finish.
 */
export class HandlerPool extends EventEmitter<RuntimeEvents> implements HandlerRuntime {
  readonly kind = "handler";
  readonly source: PoolSource;
  private threads: HandlerThread[] = [];
  /** Replaced threads until they have stopped: their memory is not given back before then. */
  private readonly ending = new Set<HandlerThread>();
  private readonly slots: SlotCount;
  /** Counters of the slot count no thread holds with now. */
  private readonly freeHolders: number[];
  private consuming = false;
  private stopping = false;
  private readonly perThread: number;
  /** Consecutive thread deaths without a finished message: replacements wait longer each time. */
  private crashes = 0;
  private packing = true;
  private supervisor?: NodeJS.Timeout;
  private sqs?: SQSClient;
  /** What the pool itself asks of SQS for its threads (made on first use): deletes and visibility changes. */
  private writes?: { deletes: Batcher<string>; visibility: Batcher<{ handle: string; seconds: number }> };
  private released = 0;
  /** The counts of threads already ended. */
  private readonly pastStats: ConsumerStats = { receives: 0, received: 0, deleteBatches: 0, deleted: 0, visibilityBatches: 0 };

  constructor(private readonly o: HandlerPoolOptions) {
    super();
    this.perThread = Math.ceil(o.maxWorkers / o.threads);
    // A counter for every thread that may be alive at once: the live ones, and those still
    // finishing (at most one a slot holds a handler that would not stop), with room to spare.
    const holders = 2 * o.threads + o.maxWorkers + 4;
    this.slots = SlotCount.create(o.maxWorkers, o.threads, holders);
    this.freeHolders = Array.from({ length: holders }, (_, i) => holders - 1 - i);
    this.source = new PoolSource(
      {
        inFlight: () => this.slots.inFlight,
        openReceives: () => this.threads.reduce((n, t) => n + (t.gone ? 0 : t.openReceives), 0),
      },
      () => this.startConsuming(),
      (why) => this.hurry(why),
      (ms) => this.drain(ms),
    );
  }

  async start(): Promise<void> {
    const started = Array.from({ length: this.o.threads }, (_, i) => this.spawn(i, this.freeHolders.pop()!));
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
    return Math.max(0, this.o.maxWorkers - this.slots.inFlight);
  }

  units(): RecycleUnit[] {
    return [...this.threads.filter((t) => !t.gone), ...this.ending];
  }

  pids(): number[] {
    return [];
  }

  recycle(unit: RecycleUnit, why: string): void {
    const thread = unit as HandlerThread;
    if (thread.retiring || thread.gone) return;
    thread.retiring = true;
    this.rebalance();
    void this.drainThread(thread, this.o.consume.processingTimeoutMs + this.o.abortGraceMs).then(() => this.replace(thread, why, false));
  }

  windDown(): void {
    this.stopping = true;
  }

  /** After the drain (or instead of one, in a self-check): ends every thread and waits for it. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.consuming = false;
    clearInterval(this.supervisor);
    await Promise.all([...this.threads, ...this.ending].map((t) => this.end(t)));
    await this.flushWrites();
    this.sqs?.destroy();
  }

  private startConsuming(): void {
    if (this.consuming || this.stopping) return;
    this.consuming = true;
    this.rebalance();
    for (const t of this.threads) if (t.ready && !t.retiring) t.send({ t: "start" });
    this.supervisor = setInterval(() => this.supervise(), this.o.superviseMs ?? 100);
  }

  /** Stops every thread receiving, lets in-flight messages finish within `ms`, and hands back what is left. */
  private async drain(ms: number): Promise<{ released: number }> {
    this.stopping = true;
    this.consuming = false;
    this.released = 0;
    const all = [...this.threads, ...this.ending].filter((t) => !t.gone);
    await Promise.all(all.map((t) => (t.ready ? this.drainThread(t, ms) : this.end(t))));
    await this.flushWrites();
    return { released: this.released };
  }

  /** A second signal: every handler is aborted now; threads that do not drain within the grace are ended. */
  private hurry(why: string): void {
    this.stopping = true;
    this.consuming = false;
    for (const t of [...this.threads, ...this.ending]) {
      if (t.gone || t.drained) continue;
      t.send({ t: "hurry", why });
      this.endBy(t, this.o.abortGraceMs + 500);
    }
  }

  /**
   * Ends a thread still there `ms` from now: at once if a handler blocks it, else not before a
   * receive it had open has come back (SQS_WAIT_TIME from now at most), for SQS delivers into a
   * receive whatever happens to the thread that made it, and ending that thread would strand it.
   * A thread that stops receiving now opens no other.
   */
  private endBy(t: HandlerThread, ms: number): void {
    const receivesBack = Date.now() + this.o.consume.waitTimeSeconds * 1000 + RECEIVE_MARGIN_MS;
    const timer = setTimeout(() => {
      if (t.gone) return;
      const now = Date.now();
      if (now >= receivesBack || now - t.ledger.heartbeat >= BLOCKED_AFTER_MS) return void this.end(t);
      const last = setTimeout(() => void this.end(t), receivesBack - now);
      void t.ended.then(() => clearTimeout(last));
    }, ms);
    void t.ended.then(() => clearTimeout(timer));
  }

  /**
   * Asks a thread to drain within `ms`, and ends it once it has, or once the drain's time and the
   * abort grace are past (a handler blocking it, or ignoring its signal): its messages go back then.
   */
  private drainThread(t: HandlerThread, ms: number): Promise<void> {
    if (t.gone || t.onDrained) return t.ended;
    this.endBy(t, ms + this.o.abortGraceMs + 500);
    t.onDrained = () => void this.end(t);
    t.retiring = true;
    t.send({ t: "drain", ms });
    return t.ended;
  }

  /**
   * How MAX_WORKERS is shared now: all of it in one thread while packing (PACKING), else at most
   * perThread each, so that a spinning handler stops no more than its own thread's slots.
   */
  private rebalance(): void {
    const live = this.threads.filter((t) => t.ready && !t.retiring && !t.gone);
    const shares = new Map<number, number>();
    if (this.consuming) {
      let left = this.o.maxWorkers;
      for (const t of live) {
        const n = this.shouldPack() ? left : Math.min(this.perThread, left);
        shares.set(t.index, n);
        left -= n;
      }
    }
    for (let i = 0; i < this.o.threads; i++) this.slots.setShare(i, shares.get(i) ?? 0);
  }

  /** Whether every slot goes to one thread now (PACKING). Never where each slot has a thread of its own. */
  private shouldPack(): boolean {
    return this.perThread > 1 && this.packing;
  }

  private supervise(): void {
    const now = Date.now();
    // Packing: by how busy the threads were over the last window.
    if (this.perThread > 1) {
      let load = 0;
      for (const t of this.threads) if (t.ready && !t.gone) load += t.handlerLoad(now);
      const was = this.packing;
      if (load > PACKING.spreadAbove) this.packing = false;
      else if (load < PACKING.packBelow) this.packing = true;
      if (was !== this.packing) this.rebalance();
    }
    for (const t of this.threads) {
      if (!t.ready || t.gone) continue;
      if (now - t.ledger.heartbeat < BLOCKED_AFTER_MS) continue;
      // Blocked: its own keeper cannot run, so the main thread keeps its messages hidden.
      const entries = t.ledger.entries().filter((e) => e.state === EntryState.Held || e.state === EntryState.Running);
      const span = this.o.consume.visibilityTimeout * 1000;
      if (entries.length && now - t.extendedAt >= span / 4) {
        t.extendedAt = now;
        this.changeVisibility(entries.map((e) => [e, this.o.consume.visibilityTimeout]));
      }
      const oldest = t.ledger.oldestRunning();
      if (oldest === undefined || now - oldest < this.o.consume.processingTimeoutMs + this.o.abortGraceMs) continue;
      this.o.log.error(
        { thread: t.index, graceSeconds: this.o.abortGraceMs / 1000, blockedMs: now - t.ledger.heartbeat },
        "a handler is still running synchronously after its processing timeout: its thread is ended now",
      );
      t.ignored ??= new ProcessingTimeout(this.o.consume.processingTimeoutMs);
      void this.end(t);
      this.replace(t, "a handler blocked its thread", true);
    }
  }

  private spawn(index: number, holder: number): HandlerThread {
    const thread = new HandlerThread(index, holder, this.o, this.slots);
    this.threads[index] = thread;
    const output = new HandlerOutput(this.o.log, () => ({ source: "handler", thread: index }));
    output.attach(thread.worker.stdout, "stdout");
    output.attach(thread.worker.stderr, "stderr");
    thread.worker.on("message", (m: FromThread) => this.onMessage(thread, m));
    thread.worker.on("error", (e) => {
      if (!thread.ready) return this.failLoad(thread, e);
      this.o.log.error({ thread: index, err: e.stack ?? e.message }, "a handler thread died: it is replaced");
      void this.end(thread);
      this.replace(thread, "its thread died", true);
    });
    thread.worker.on("exit", (code) => {
      if (thread.gone) return;
      if (!thread.ready) return this.failLoad(thread, new ThreadExited(`WORKER_HANDLER exited with ${code} while it was being loaded`));
      this.o.log.error({ thread: index, exitCode: code }, "a handler thread exited (process.exit in a handler?): it is replaced");
      void this.end(thread);
      this.replace(thread, `its thread exited with ${code}`, true);
    });
    return thread;
  }

  private failLoad(thread: HandlerThread, e: Error): void {
    if (thread.gone) return;
    thread.gone = true;
    void thread.worker.terminate().then(() => {
      this.freeHolder(thread);
      thread.markEnded();
    });
    thread.loadFailed(e);
  }

  private onMessage(thread: HandlerThread, m: FromThread): void {
    switch (m.t) {
      case "ready":
        thread.ready = true;
        thread.markReady();
        if (this.consuming && !thread.retiring) {
          this.rebalance();
          thread.send({ t: "start" });
        }
        this.emit("capacity");
        return;
      case "load-error":
        this.failLoad(thread, asError(m.error));
        return;
      case "events":
        this.onEvents(thread, m);
        return;
      case "warn":
        this.o.log.warn({ thread: thread.index, err: m.error.stack ?? m.error.message }, m.msg);
        return;
      case "ignored": {
        const reason = asError(m.reason);
        const what = reason.name === "ProcessingTimeout" ? "its processing timeout" : "its abort signal";
        this.o.log.error(
          { messageId: m.message.id, thread: thread.index, graceSeconds: this.o.abortGraceMs / 1000 },
          `a handler ignored ${what}: a fresh thread takes over, and this one is ended once the others in it finish`,
        );
        thread.ignored ??= reason;
        // A fresh thread takes the other slots now. This one finishes its other messages and goes:
        // ended as soon as only handlers that would not stop are left ("stuck"), or drained if the
        // one that went on stops after all.
        thread.retiring = true;
        this.rebalance();
        void this.drainThread(thread, this.o.consume.processingTimeoutMs);
        this.replace(thread, "a handler ignored its abort signal", true);
        return;
      }
      case "stuck":
        void this.end(thread);
        this.replace(thread, "a handler ignored its abort signal", true);
        return;
      case "crashed":
        // An exception no handler caught (a throw from a timer): which message threw cannot be
        // told, so none is blamed. The thread drains and goes; a fresh one takes its place now.
        this.o.log.error(
          { thread: thread.index, err: m.error.stack ?? m.error.message },
          "a handler threw outside any message's promise: its thread is replaced",
        );
        thread.retiring = true;
        this.rebalance();
        void this.drainThread(thread, this.o.abortGraceMs);
        this.replace(thread, "its thread died of an uncaught exception", true);
        return;
      case "spent":
        // It drains by itself; its successor starts once it is gone, so that its slots are free.
        thread.retiring = true;
        this.rebalance();
        void this.drainThread(thread, this.o.consume.processingTimeoutMs + this.o.abortGraceMs).then(() =>
          this.replace(thread, `it took WORKER_MAX_MESSAGES (${this.o.consume.budget})`, false),
        );
        return;
      case "drained":
        thread.drained = true;
        thread.onDrained?.();
        return;
    }
  }

  /** What every thread asked of SQS so far (the bench reads it). */
  stats(): ConsumerStats {
    const sum = { ...this.pastStats };
    for (const t of [...this.threads, ...this.ending]) {
      if (!t.stats || t.gone) continue;
      for (const k of Object.keys(sum) as (keyof ConsumerStats)[]) sum[k] += t.stats[k];
    }
    return sum;
  }

  private onEvents(thread: HandlerThread, m: ThreadEvents): void {
    thread.handled = m.handled;
    if (m.stats) thread.stats = m.stats;
    if (m.deleted) this.source.emit("deleted", m.deleted);
    thread.openReceives = m.openReceives;
    if (m.heapBytes !== undefined) thread.heapBytes = m.heapBytes;
    if (m.processed.length) this.crashes = 0;
    const e = this.source;
    for (const [note, ms] of m.processed) e.emit("processed", messageOf(note), ms);
    for (const [note, err, retryIn] of m.failed) e.emit("failed", messageOf(note), asError(err), retryIn);
    for (const note of m.released) {
      this.released++;
      e.emit("released", messageOf(note));
    }
    if (m.polled) e.emit("polled");
    for (const [operation, err] of m.errors) e.emit("error", asError(err), operation);
  }

  /** Starts a thread's successor, later each time threads keep dying without finishing a message. */
  private replace(thread: HandlerThread, why: string, died: boolean): void {
    if (thread.replaced) return;
    thread.replaced = true;
    this.emit("recycled", thread, why);
    if (this.stopping) return;
    if (died) this.crashes++;
    const delay = died ? Math.min(5_000, 100 * 2 ** Math.max(0, this.crashes - 1)) : 0;
    // Until it is gone, a thread that is still draining is the pool's to wait for and to end.
    if (!thread.gone) this.ending.add(thread);
    const start = () => {
      if (this.stopping || this.threads[thread.index] !== thread) return;
      // Every counter is held by a thread still finishing: wait for one to end.
      const holder = this.freeHolders.pop();
      if (holder === undefined) return void setTimeout(start, 100).unref();
      this.spawn(thread.index, holder).loaded.catch((e: Error) =>
        this.emit("fatal", new Error(`a handler thread could not load WORKER_HANDLER again: ${e.message}`)),
      );
    };
    if (delay) setTimeout(start, delay).unref();
    else start();
  }

  /**
   * Ends a thread and hands back what its ledger says it held: a message that would not stop fails
   * with why it was told to (or goes back, when that was the drain's end); the others go back.
   */
  private async end(thread: HandlerThread): Promise<void> {
    if (thread.gone) return thread.ended;
    thread.gone = true;
    thread.ready = false;
    thread.retiring = true;
    if (thread.stats) for (const k of Object.keys(this.pastStats) as (keyof ConsumerStats)[]) this.pastStats[k] += thread.stats[k];
    if (this.threads[thread.index] === thread) this.rebalance();
    this.ending.add(thread);
    await thread.worker.terminate();
    this.ending.delete(thread);
    this.freeHolder(thread);
    // Only a handler past its processing timeout fails; one told to stop by the drain's end, and
    // every message that merely shared its thread, goes back untouched. What the thread had
    // already decided (a delete, a retry delay) but SQS had not acknowledged is done for it.
    const stuck = thread.ignored?.name === "ProcessingTimeout" ? thread.ignored : undefined;
    const now = Date.now();
    const changes: [LedgerEntry, number][] = [];
    const deletes: LedgerEntry[] = [];
    for (const entry of thread.ledger.entries()) {
      if (entry.state === EntryState.Deleting) {
        deletes.push(entry);
        continue;
      }
      if (entry.state === EntryState.Settling) {
        changes.push([entry, entry.seconds]);
        continue;
      }
      const message = messageOf({ id: entry.messageId, receives: entry.receiveCount });
      if (stuck && entry.state === EntryState.Running && now - entry.since >= this.o.consume.processingTimeoutMs) {
        const seconds = retryDelay(this.o.consume.retryDelaySeconds, entry.receiveCount);
        this.source.emit("failed", message, stuck, seconds);
        changes.push([entry, seconds]);
      } else {
        this.released++;
        this.source.emit("released", message);
        changes.push([entry, 0]);
      }
    }
    await Promise.all([changes.length && this.changeVisibility(changes), deletes.length && this.deleteMessages(deletes)]);
    thread.markEnded();
    this.emit("capacity");
  }

  /** Its slots go back to the count (a dead thread runs no handler), and its counter to the next thread. */
  private freeHolder(thread: HandlerThread): void {
    this.slots.clear(thread.holder);
    this.freeHolders.push(thread.holder);
  }

  private writer(): NonNullable<HandlerPool["writes"]> {
    if (this.writes) return this.writes;
    const sqs = (this.sqs = workerSqsClient({
      region: this.o.consume.region ?? "us-east-1",
      endpoint: this.o.consume.endpoint,
      credentials: staticCredentials(this.o.env ?? process.env),
    }));
    const sendDeletes = sqsDeletes(sqs, this.o.consume.queueUrl);
    return (this.writes = {
      deletes: new Batcher(async (entries) => {
        const result = await sendDeletes(entries);
        const deleted = entries.length - result.failed.length;
        if (deleted) this.source.emit("deleted", deleted);
        return result;
      }),
      visibility: new Batcher(sqsVisibilityChanges(sqs, this.o.consume.queueUrl)),
    });
  }

  /** Waits until SQS has answered everything the pool asked of it. */
  private async flushWrites(): Promise<void> {
    await Promise.all([this.writes?.deletes.flush(), this.writes?.visibility.flush()]);
  }

  /** Messages an ended thread had processed whose delete SQS had not acknowledged. */
  private deleteMessages(entries: LedgerEntry[]): Promise<unknown> {
    const { deletes } = this.writer();
    return Promise.all(entries.map((e) => deletes.add(e.receiptHandle).catch((err: Error) => void this.source.emit("error", err, "DeleteMessage"))));
  }

  private changeVisibility(changes: [LedgerEntry, number][]): Promise<unknown> {
    const { visibility } = this.writer();
    return Promise.all(
      changes.map(([e, seconds]) =>
        visibility.add({ handle: e.receiptHandle, seconds }).catch((err: Error) => void this.source.emit("error", err, "ChangeMessageVisibility")),
      ),
    );
  }
}
