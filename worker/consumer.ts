import { EventEmitter } from "node:events";
import { Message, MessageSystemAttributeName, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { Batcher, sqsDeletes, sqsVisibilityChanges } from "./batcher";
import type { Ledger, SlotCount } from "./slot-board";
import { retryDelay } from "./settings";

/**
 * What a processor is told to stop with: the part of AbortSignal the runtimes use, so that an
 * AbortSignal is one too. The consumer's own costs nothing until it fires, where an AbortController
 * costs about 6 µs to make on Node 20: a tenth of what kiln spends on a no-op message besides SDK calls.
 */
export interface StopSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/** A message's StopSignal, fired at its processing timeout or a drain's end. */
class MessageStop implements StopSignal {
  aborted = false;
  reason: unknown;
  private listeners?: (() => void)[];

  addEventListener(_type: "abort", listener: () => void): void {
    // As an AbortSignal does: a listener added after the abort is never called.
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    this.listeners = this.listeners?.filter((l) => l !== listener);
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners ?? [];
    this.listeners = undefined;
    for (const l of listeners) l();
  }
}

/**
 * Runs one message; rejects to fail it. `signal` aborts at the processing timeout or a drain's end.
 * The consumer holds the message's slot (and keeps it hidden) until the returned promise settles,
 * so a processor must settle once its work has really stopped, not merely when it was asked to.
 */
export type Processor = (message: Message, signal: StopSignal) => Promise<void>;

export interface ConsumerOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Handlers running at once. */
  concurrency: number;
  maxMessages: number;
  waitTimeSeconds: number;
  visibilityTimeout: number;
  processingTimeoutMs: number;
  retryDelaySeconds: number;
  process: Processor;
  /**
   * Slots that can take a message now, when fewer than `concurrency` may be (an app process still
   * starting). The consumer never receives more than this; call `wake()` when it grows.
   */
  capacity?: () => number;
  /**
   * A handler thread that consumes itself (worker/slot-board.ts): it takes a slot of the count the
   * threads share before it starts a message, fills no more than its share of them, and records
   * every message it holds in its ledger, until SQS has acknowledged what became of it, for the
   * main thread to finish should the thread die. `holder` is its counter in the slot count.
   */
  board?: { slots: SlotCount; thread: number; holder: number; ledger: Ledger };
  /** Messages to take in all (a thread's WORKER_MAX_MESSAGES); then it receives no more and emits "spent" once they have finished. */
  budget?: number;
}

/** System attributes every received message carries: the retry delay and app mode's headers need them. */
export const RECEIVED_ATTRIBUTES: MessageSystemAttributeName[] = [
  "ApproximateReceiveCount",
  "ApproximateFirstReceiveTimestamp",
  "SentTimestamp",
  "SenderId",
];

export class ProcessingTimeout extends Error {
  constructor(ms: number) {
    super(`processing took longer than ${ms / 1000} s`);
    this.name = "ProcessingTimeout";
  }
}

/** The drain ran out of time (or a second signal said hurry): unfinished work goes back to the queue. */
export class DrainTimeout extends Error {
  constructor(why = "the drain timeout ended processing") {
    super(`${why}; the message goes back to the queue`);
    this.name = "DrainTimeout";
  }
}

/**
 * A processor rejects with this when a message could not run through no fault of its own (its
 * handler thread died under another message, its app process was recycled): it goes straight back
 * to the queue, without the retry delay a failure earns.
 */
export class ReleaseMessage extends Error {
  constructor(why: string) {
    super(why);
    this.name = "ReleaseMessage";
  }
}

interface Held {
  message: Message;
  /** When SQS will show the message again unless we extend it. */
  visibleAt: number;
  /** Its entry in the thread's ledger (board), or -1. */
  entry: number;
}

interface InFlight extends Held {
  stop: MessageStop;
}

export interface ConsumerEvents {
  received: [count: number];
  processed: [message: Message, ms: number];
  failed: [message: Message, error: Error, retryInSeconds: number];
  released: [message: Message];
  /** A receive succeeded (with messages or without). */
  polled: [];
  /** SQS acknowledged the delete of this many processed messages (one event a batch). */
  deleted: [count: number];
  /** The budget is taken and every message of it has finished. */
  spent: [];
  error: [error: Error, operation: string];
}

/**
 * What the worker's run loop drives (worker/run.ts): the Consumer, where the main thread receives
 * for a runtime (command and app modes), or the handler threads, which consume themselves.
 */
export interface MessageSource extends EventEmitter<ConsumerEvents> {
  readonly inFlight: number;
  readonly openReceives: number;
  start(): void;
  /** Capacity grew: receive for it. */
  wake(): void;
  hurry(why: string): void;
  drain(timeoutMs: number): Promise<{ released: number }>;
}

/** After an empty receive that came back at once (short polling), wait this long, doubling to the cap. */
const EMPTY_BACKOFF_MS = { first: 50, max: 1_000 };

/**
 * Read-ahead: a busy consumer also receives what its slots will finish within READ_AHEAD_MS, up to
 * one batch, so a slot that frees starts its next message at once instead of idling for a round
 * trip, and receives carry whole batches instead of one message each (a request costs the worker
 * about a millisecond of CPU). A slow handler finishes less than one message in that time and gets
 * no read-ahead at all: a message never waits in this process for a slot much longer than
 * READ_AHEAD_MS.
 */
const READ_AHEAD_MS = 50;
/** How long a delete waits for others to share its batch. */
const DELETE_LINGER_MS = 20;
/** How often the finish rate the read-ahead is sized by is measured. */
const RATE_WINDOW_MS = 100;

/**
 * An SQS consumer that keeps `concurrency` handlers busy: a slot is refilled the moment it frees,
 * never after the slowest message of a batch. It receives for its free slots, and when busy, for
 * what its slots finish within READ_AHEAD_MS (the read-ahead above): nothing waits in this process
 * for a slot much longer than that, so messages stay in the queue for other workers.
 *
 * Stopping never cancels a receive: SQS goes on delivering into a request the client gave up on,
 * and those messages would stay hidden for the visibility timeout with a receive spent. Open
 * receives are left to return (within SQS_WAIT_TIME), and whatever they bring is handed back.
 */
/** What a consumer asked of SQS, counted since it was made: the bench reads it. */
export interface ConsumerStats {
  receives: number;
  received: number;
  deleteBatches: number;
  deleted: number;
  visibilityBatches: number;
}

export class Consumer extends EventEmitter<ConsumerEvents> implements MessageSource {
  readonly stats: ConsumerStats = { receives: 0, received: 0, deleteBatches: 0, deleted: 0, visibilityBatches: 0 };
  private readonly active = new Map<string, InFlight>();
  /** Read ahead, waiting for a slot (oldest first). */
  private readonly ahead: Held[] = [];
  /** Messages finished since `rateSince`, and the finish rate measured from them (per ms). */
  private finished = 0;
  private rateSince = Date.now();
  private ratePerMs = 0;
  private running = false;
  private reserved = 0;
  private polls = 0;
  /** After an empty receive, one long poll is enough; more would only cost requests. */
  private idle = true;
  /** Cancels back-off waits (never a receive) when the consumer stops. */
  private stopping = new AbortController();
  private failures = 0;
  private emptyStreak = 0;
  private refillScheduled = false;
  private keeper?: NodeJS.Timeout;
  private quiet?: () => void;
  /** Released while one of our own receives was open: handed back once none is, or they would come straight back to us. */
  private held: { message: Message; entry: number }[] = [];
  /** Receipt handles with their ledger entries (-1 for none), freed once SQS has answered. */
  private readonly deletes: Batcher<{ handle: string; entry: number }>;
  private readonly visibility: Batcher<{ handle: string; seconds: number; entry: number }>;
  /** Messages taken against the budget. */
  private taken = 0;
  private retryScheduled = false;

  constructor(private readonly o: ConsumerOptions) {
    super();
    // An entry's ledger record goes once SQS has answered for it, whatever the answer: until then a
    // thread ended meanwhile leaves the main thread its delete or visibility change to make.
    const ledger = o.board?.ledger;
    const forget = (entries: { item: { entry: number } }[]) => {
      if (ledger) for (const e of entries) ledger.drop(e.item.entry);
    };
    const sendDeletes = sqsDeletes(o.sqs, o.queueUrl);
    const sendVisibility = sqsVisibilityChanges(o.sqs, o.queueUrl);
    this.deletes = new Batcher(async (entries) => {
      try {
        const result = await sendDeletes(entries.map((e) => ({ id: e.id, item: e.item.handle })));
        const deleted = entries.length - result.failed.length;
        this.stats.deleteBatches++;
        this.stats.deleted += deleted;
        if (deleted) this.emit("deleted", deleted);
        return result;
      } finally {
        forget(entries);
      }
    },
      // A processed message waits for its delete a little longer so that deletes go out in fuller
      // batches (AWS's buffered Java client holds a batch open 200 ms). It stays hidden meanwhile, a
      // drain flushes at once, and a crash in the window repeats at most that much work.
      DELETE_LINGER_MS,
    );
    this.visibility = new Batcher(async (entries) => {
      this.stats.visibilityBatches++;
      try {
        return await sendVisibility(entries);
      } finally {
        forget(entries);
      }
    });
  }

  get inFlight(): number {
    return this.active.size;
  }

  /** Read ahead, waiting for a slot. */
  get waiting(): number {
    return this.ahead.length;
  }

  /** Receives still open at SQS. */
  get openReceives(): number {
    return this.polls;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = new AbortController();
    const tick = Math.max(100, Math.min(1000, (this.o.visibilityTimeout * 1000) / 4));
    this.keeper = setInterval(() => this.extendVisibility(), tick);
    this.fill();
  }

  /** Capacity grew (an app process became ready): receive for it. */
  wake(): void {
    this.scheduleFill();
  }

  /** Stops receiving. Open receives run to their end; in-flight messages carry on; read-ahead goes back. */
  stop(): void {
    this.running = false;
    this.stopping.abort();
    for (const h of this.ahead.splice(0)) this.release(h.message, h.entry);
  }

  /** Ends the drain's wait now: every in-flight message is aborted and goes back to the queue. */
  hurry(why: string): void {
    this.stop();
    for (const f of this.active.values()) f.stop.abort(new DrainTimeout(why));
  }

  /**
   * Stops receiving, lets in-flight messages finish within `timeoutMs` (their visibility still
   * extended), then aborts what is left and hands it back to the queue. Returns once every handler
   * has stopped, every open receive has returned (its messages handed back) and every delete and
   * visibility change is acknowledged: nothing SQS gave this consumer is left hidden.
   */
  async drain(timeoutMs: number): Promise<{ released: number }> {
    this.stop();
    let released = 0;
    const count = () => released++;
    this.on("released", count);
    const timer = setTimeout(() => {
      for (const f of this.active.values()) f.stop.abort(new DrainTimeout());
    }, timeoutMs);
    while (this.active.size > 0 || this.polls > 0) await new Promise<void>((resolve) => (this.quiet = resolve));
    clearTimeout(timer);
    this.handBack();
    clearInterval(this.keeper);
    await this.flushWrites();
    this.off("released", count);
    return { released };
  }

  /** Sends every delete and visibility change waiting for a fuller batch, and waits until SQS has answered them. */
  async flushWrites(): Promise<void> {
    await Promise.all([this.deletes.flush(), this.visibility.flush()]);
  }

  private settle(): void {
    if (this.polls === 0) this.handBack();
    if (this.active.size === 0 && this.polls === 0) this.quiet?.();
  }

  private slots(): number {
    let slots = this.o.capacity ? Math.min(this.o.concurrency, this.o.capacity()) : this.o.concurrency;
    const b = this.o.board;
    if (b) slots = Math.min(slots, b.slots.share(b.thread), this.active.size + Math.max(0, b.slots.max - b.slots.inFlight));
    return slots;
  }

  /** Takes a slot of the shared count (board) for a message about to start; without a board there is nothing to take. */
  private acquire(): boolean {
    const b = this.o.board;
    if (!b) return true;
    if (b.slots.tryAcquire(b.holder)) return true;
    // Another thread took it: look again shortly (slots freed in other threads wake nobody here).
    if (!this.retryScheduled) {
      this.retryScheduled = true;
      setTimeout(() => {
        this.retryScheduled = false;
        this.fill();
      }, 5);
    }
    return false;
  }

  /** Messages to hold beyond the free slots: what the slots finish in READ_AHEAD_MS, at most one batch. */
  private readAhead(): number {
    const now = Date.now();
    const span = now - this.rateSince;
    if (span >= RATE_WINDOW_MS) {
      const rate = this.finished / span;
      // A long gap (slow handlers, a pause) replaces the old rate rather than averaging with it.
      this.ratePerMs = span >= 2 * RATE_WINDOW_MS ? rate : (this.ratePerMs + rate) / 2;
      this.finished = 0;
      this.rateSince = now;
    }
    // A slot that is not ready (an app process starting) would leave read-ahead waiting on it.
    if (this.o.capacity && this.o.capacity() < this.o.concurrency) return 0;
    // A handler thread reads ahead for its share of the slots, not for all of them.
    const share = this.o.board ? this.o.board.slots.share(this.o.board.thread) : this.o.concurrency;
    if (share === 0) return 0;
    return Math.min(share, this.o.maxMessages, Math.floor(this.ratePerMs * READ_AHEAD_MS));
  }

  /** Starts read-ahead messages in free slots. */
  private startAhead(): void {
    if (!this.running) return;
    const slots = this.slots();
    while (this.ahead.length > 0 && this.active.size < slots && this.acquire()) {
      const h = this.ahead.shift()!;
      this.begin(h);
    }
  }

  private fill(): void {
    this.startAhead();
    // Busy, every free slot may have a receive of its own in flight: waiting for one open receive
    // before asking for the next leaves slots idle for a round trip. Each receive still asks only
    // for slots nobody has reserved.
    const maxPolls = this.idle ? 1 : this.o.concurrency;
    while (this.running && this.polls < maxPolls) {
      const slots = this.slots();
      const idleSlots = slots - this.active.size - this.ahead.length - this.reserved;
      const readAhead = this.readAhead();
      let want = idleSlots + readAhead;
      if (this.o.budget !== undefined) want = Math.min(want, this.o.budget - this.taken - this.reserved);
      if (want <= 0) return;
      // A slot about to idle is asked for at once; reading ahead waits until a whole batch is due.
      if (idleSlots <= 0 && want < Math.min(this.o.maxMessages, readAhead)) return;
      const n = Math.min(this.o.maxMessages, want);
      this.reserved += n;
      this.polls++;
      void this.poll(n);
    }
  }

  /**
   * Handlers that finish in the same turn share one refill: refilling on the first alone would
   * receive for one slot and hold the only receive while the others free up (1, 9, 1, 9 ...).
   */
  private scheduleFill(): void {
    if (this.refillScheduled) return;
    this.refillScheduled = true;
    setImmediate(() => {
      this.refillScheduled = false;
      this.fill();
    });
  }

  private async poll(n: number): Promise<void> {
    const began = Date.now();
    try {
      const out = await this.o.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.o.queueUrl,
          MaxNumberOfMessages: n,
          WaitTimeSeconds: this.o.waitTimeSeconds,
          VisibilityTimeout: this.o.visibilityTimeout,
          MessageSystemAttributeNames: RECEIVED_ATTRIBUTES,
          MessageAttributeNames: ["All"],
        }),
      );
      const messages = out.Messages ?? [];
      this.stats.receives++;
      this.stats.received += messages.length;
      this.failures = 0;
      this.emit("polled");
      this.idle = messages.length === 0;
      if (messages.length) this.emit("received", messages.length);
      this.reserved -= n;
      n = 0;
      const slots = this.slots();
      const visibleAt = began + this.o.visibilityTimeout * 1000;
      const ledger = this.o.board?.ledger;
      // Every message goes in the ledger before any starts: a handler that blocks its thread from
      // the first message on must not leave the rest of the batch unknown to the main thread.
      const batch = messages.map((m) => ({
        message: m,
        visibleAt,
        entry: ledger && m.ReceiptHandle ? ledger.hold(m.ReceiptHandle, m.MessageId ?? "", Number(m.Attributes?.ApproximateReceiveCount ?? 1)) : -1,
      }));
      for (const held of batch) {
        // Received as a stop raced the poll: give it straight back rather than start it.
        if (!this.running) {
          this.release(held.message, held.entry);
          continue;
        }
        this.taken++;
        if (this.active.size < slots && this.acquire()) this.begin(held);
        else this.ahead.push(held);
      }
      if (messages.length > 0) this.emptyStreak = 0;
      else if (Date.now() - began < 1_000) {
        // Short polling (SQS_WAIT_TIME=0) on an empty queue would otherwise ask hundreds of times a second.
        await sleep(Math.min(EMPTY_BACKOFF_MS.max, EMPTY_BACKOFF_MS.first * 2 ** this.emptyStreak++), this.stopping.signal);
      }
    } catch (e) {
      this.failures++;
      this.emit("error", e as Error, "ReceiveMessage");
      // Back off on a failing queue (throttling, network): 0.2 s doubling to 20 s.
      await sleep(Math.min(20_000, 100 * 2 ** this.failures), this.stopping.signal);
    } finally {
      this.reserved -= n;
      this.polls--;
      this.settle();
      this.fill();
    }
  }

  /** `held.visibleAt`: when SQS shows the message again, counted from the receive that brought it. */
  private begin(held: Held): void {
    const { message, visibleAt, entry } = held;
    // A receipt handle is unique per receive, even when SQS delivers the same message twice.
    const id = message.ReceiptHandle ?? message.MessageId ?? String(Math.random());
    const stop = new MessageStop();
    const started = Date.now();
    this.active.set(id, { message, stop, visibleAt, entry });
    const board = this.o.board;
    board?.ledger.running(entry, started);
    const timer = setTimeout(() => stop.abort(new ProcessingTimeout(this.o.processingTimeoutMs)), this.o.processingTimeoutMs);

    // The slot stays taken, and the message hidden, until the processor has really stopped: a
    // handler that ignores its signal must not run beside the next message in its slot.
    const done = () => {
      clearTimeout(timer);
      this.active.delete(id);
      board?.slots.release(board.holder);
      this.finished++;
      if (this.o.budget !== undefined && this.taken >= this.o.budget && this.active.size === 0 && this.ahead.length === 0) {
        queueMicrotask(() => this.emit("spent"));
      }
      this.startAhead();
      this.settle();
      this.scheduleFill();
    };
    let processing: Promise<void>;
    try {
      processing = this.o.process(message, stop);
    } catch (e) {
      processing = Promise.reject(e as Error);
    }
    processing.then(
      () => {
        try {
          this.succeed(message, Date.now() - started, entry);
        } finally {
          done();
        }
      },
      (e: Error) => {
        try {
          const reason = stop.aborted ? (stop.reason as Error) : e;
          if (reason instanceof DrainTimeout || e instanceof ReleaseMessage) this.release(message, entry);
          else this.fail(message, reason, entry);
        } finally {
          done();
        }
      },
    );
  }

  private succeed(message: Message, ms: number, entry: number): void {
    this.o.board?.ledger.deleting(entry);
    this.emit("processed", message, ms);
    if (!message.ReceiptHandle) return;
    this.deletes.add({ handle: message.ReceiptHandle, entry }).catch((e: Error) => this.emit("error", e, "DeleteMessage"));
  }

  private fail(message: Message, error: Error, entry: number): void {
    const receives = Number(message.Attributes?.ApproximateReceiveCount ?? 1);
    const seconds = retryDelay(this.o.retryDelaySeconds, receives);
    this.o.board?.ledger.settling(entry, seconds);
    this.emit("failed", message, error, seconds);
    this.setVisibility(message, seconds, entry);
  }

  /** Back to the queue for another worker at once: not a failure, no retry delay. */
  private release(message: Message, entry: number): void {
    this.o.board?.ledger.settling(entry, 0);
    this.emit("released", message);
    this.held.push({ message, entry });
    if (this.polls === 0 || this.running) this.handBack();
  }

  private handBack(): void {
    for (const h of this.held.splice(0)) this.setVisibility(h.message, 0, h.entry);
  }

  private setVisibility(message: Message, seconds: number, entry: number): void {
    if (!message.ReceiptHandle) return;
    this.visibility
      .add({ handle: message.ReceiptHandle, seconds, entry })
      .catch((e: Error) => this.emit("error", e, "ChangeMessageVisibility"));
  }

  /** Keeps every message still being processed or waiting for a slot hidden, half a visibility timeout ahead. */
  private extendVisibility(): void {
    const now = Date.now();
    const span = this.o.visibilityTimeout * 1000;
    for (const f of [...this.active.values(), ...this.ahead]) {
      if (f.visibleAt - now > span / 2 || !f.message.ReceiptHandle) continue;
      f.visibleAt = now + span;
      this.visibility
        .add({ handle: f.message.ReceiptHandle, seconds: this.o.visibilityTimeout, entry: -1 })
        .catch((e: Error) => this.emit("error", e, "ChangeMessageVisibility"));
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = () => (clearTimeout(t), resolve());
    const t = setTimeout(() => (signal.removeEventListener("abort", onAbort), resolve()), ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
