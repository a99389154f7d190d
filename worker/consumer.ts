import { EventEmitter } from "node:events";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  Message,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { Batcher } from "./batcher";
import { retryDelay } from "./settings";

/** Runs one message; rejects to fail it. `signal` aborts at the processing timeout or a drain's end. */
export type Processor = (message: Message, signal: AbortSignal) => Promise<void>;

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
}

export class ProcessingTimeout extends Error {
  constructor(ms: number) {
    super(`processing took longer than ${ms / 1000} s`);
    this.name = "ProcessingTimeout";
  }
}

class DrainTimeout extends Error {
  constructor() {
    super("the drain timeout ended processing; the message goes back to the queue");
    this.name = "DrainTimeout";
  }
}

interface InFlight {
  message: Message;
  abort: AbortController;
  started: number;
  /** When SQS will show the message again unless we extend it. */
  visibleAt: number;
}

export interface ConsumerEvents {
  received: [count: number];
  processed: [message: Message, ms: number];
  failed: [message: Message, error: Error, retryInSeconds: number];
  released: [message: Message];
  error: [error: Error, operation: string];
}

/**
 * An SQS consumer that keeps `concurrency` handlers busy: a slot is refilled the moment it frees,
 * never after the slowest message of a batch, and it only ever receives as many messages as it has
 * free slots, so nothing sits hidden in the queue waiting for this process.
 */
export class Consumer extends EventEmitter<ConsumerEvents> {
  private readonly active = new Map<string, InFlight>();
  private running = false;
  private reserved = 0;
  private polls = 0;
  /** After an empty receive, one long poll is enough; more would only cost requests. */
  private idle = true;
  private pollAbort = new AbortController();
  private failures = 0;
  private refillScheduled = false;
  private stoppedAt = 0;
  private keeper?: NodeJS.Timeout;
  private settled?: () => void;
  private readonly deletes: Batcher<string>;
  private readonly visibility: Batcher<{ handle: string; seconds: number }>;

  constructor(private readonly o: ConsumerOptions) {
    super();
    this.deletes = new Batcher(async (entries) => {
      const out = await o.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: o.queueUrl,
          Entries: entries.map((e) => ({ Id: e.id, ReceiptHandle: e.item })),
        }),
      );
      return { failed: (out.Failed ?? []).map((f) => ({ id: f.Id!, message: f.Message ?? f.Code ?? "refused" })) };
    });
    this.visibility = new Batcher(async (entries) => {
      const out = await o.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: o.queueUrl,
          Entries: entries.map((e) => ({ Id: e.id, ReceiptHandle: e.item.handle, VisibilityTimeout: e.item.seconds })),
        }),
      );
      return { failed: (out.Failed ?? []).map((f) => ({ id: f.Id!, message: f.Message ?? f.Code ?? "refused" })) };
    });
  }

  get inFlight(): number {
    return this.active.size;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.pollAbort = new AbortController();
    const tick = Math.max(100, Math.min(1000, (this.o.visibilityTimeout * 1000) / 4));
    this.keeper = setInterval(() => this.extendVisibility(), tick);
    this.fill();
  }

  /** Stops receiving at once: an open long poll is cancelled. In-flight messages carry on. */
  stop(): void {
    if (this.running) this.stoppedAt = Date.now();
    this.running = false;
    this.pollAbort.abort();
  }

  /**
   * Stops receiving, lets in-flight messages finish within `timeoutMs` (their visibility still
   * extended), then aborts what is left and hands it back to the queue, and flushes every delete.
   */
  async drain(timeoutMs: number): Promise<{ released: number }> {
    this.stop();
    if (this.active.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.settled = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    const left = [...this.active.values()];
    for (const f of left) f.abort.abort(new DrainTimeout());
    while (this.active.size > 0) await new Promise<void>((resolve) => (this.settled = resolve));
    clearInterval(this.keeper);
    await Promise.all([this.deletes.flush(), this.visibility.flush()]);
    return { released: left.length };
  }

  private fill(): void {
    // Busy, every free slot may have a receive of its own in flight: waiting for one open receive
    // before asking for the next leaves slots idle for a round trip (73% of ideal at 10 ms latency,
    // 80% without the wait). Each receive still asks only for slots nobody has reserved.
    const maxPolls = this.idle ? 1 : this.o.concurrency;
    while (this.running && this.polls < maxPolls) {
      const free = this.o.concurrency - this.active.size - this.reserved;
      if (free <= 0) return;
      const n = Math.min(this.o.maxMessages, free);
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
    const signal = this.pollAbort.signal;
    try {
      const out = await this.o.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.o.queueUrl,
          MaxNumberOfMessages: n,
          WaitTimeSeconds: this.o.waitTimeSeconds,
          VisibilityTimeout: this.o.visibilityTimeout,
          MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
          MessageAttributeNames: ["All"],
        }),
        { abortSignal: signal },
      );
      const messages = out.Messages ?? [];
      this.failures = 0;
      this.idle = messages.length === 0;
      if (messages.length) this.emit("received", messages.length);
      this.reserved -= n;
      n = 0;
      for (const m of messages) {
        // Received as a stop raced the poll: give it straight back rather than start it.
        if (!this.running) this.release(m);
        else this.begin(m);
      }
    } catch (e) {
      if (signal.aborted) return;
      this.failures++;
      this.emit("error", e as Error, "ReceiveMessage");
      // Back off on a failing queue (throttling, network): 0.2 s doubling to 20 s.
      await sleep(Math.min(20_000, 100 * 2 ** this.failures), signal);
    } finally {
      this.reserved -= n;
      this.polls--;
      this.fill();
    }
  }

  private begin(message: Message): void {
    // A receipt handle is unique per receive, even when SQS delivers the same message twice.
    const id = message.ReceiptHandle ?? message.MessageId ?? String(Math.random());
    const abort = new AbortController();
    const now = Date.now();
    const flight: InFlight = { message, abort, started: now, visibleAt: now + this.o.visibilityTimeout * 1000 };
    this.active.set(id, flight);
    const timer = setTimeout(() => abort.abort(new ProcessingTimeout(this.o.processingTimeoutMs)), this.o.processingTimeoutMs);

    const aborted = new Promise<never>((_, reject) =>
      abort.signal.addEventListener("abort", () => reject(abort.signal.reason as Error), { once: true }),
    );
    aborted.catch(() => undefined);
    Promise.race([Promise.resolve().then(() => this.o.process(message, abort.signal)), aborted])
      .then(
        () => this.succeed(message, Date.now() - now),
        (e: Error) => (e instanceof DrainTimeout ? this.release(message) : this.fail(message, e)),
      )
      .finally(() => {
        clearTimeout(timer);
        this.active.delete(id);
        if (this.active.size === 0) this.settled?.();
        this.scheduleFill();
      });
  }

  private succeed(message: Message, ms: number): void {
    this.emit("processed", message, ms);
    if (!message.ReceiptHandle) return;
    this.deletes.add(message.ReceiptHandle).catch((e: Error) => this.emit("error", e, "DeleteMessage"));
  }

  private fail(message: Message, error: Error): void {
    const receives = Number(message.Attributes?.ApproximateReceiveCount ?? 1);
    const seconds = retryDelay(this.o.retryDelaySeconds, receives);
    this.emit("failed", message, error, seconds);
    this.setVisibility(message, seconds);
  }

  /**
   * Back to the queue for another worker: not a failure, no retry delay. A long poll cancelled by
   * stop() may still be open at SQS and would swallow a message made visible at once, so it becomes
   * visible the moment the last such poll has expired.
   */
  private release(message: Message): void {
    this.emit("released", message);
    const pollsOpenFor = this.o.waitTimeSeconds - (Date.now() - this.stoppedAt) / 1000;
    this.setVisibility(message, Math.max(0, Math.ceil(pollsOpenFor)));
  }

  private setVisibility(message: Message, seconds: number): void {
    if (!message.ReceiptHandle) return;
    this.visibility
      .add({ handle: message.ReceiptHandle, seconds })
      .catch((e: Error) => this.emit("error", e, "ChangeMessageVisibility"));
  }

  /** Keeps every message still being processed hidden, half a visibility timeout ahead. */
  private extendVisibility(): void {
    const now = Date.now();
    const span = this.o.visibilityTimeout * 1000;
    for (const f of this.active.values()) {
      if (f.visibleAt - now > span / 2 || !f.message.ReceiptHandle) continue;
      f.visibleAt = now + span;
      this.visibility
        .add({ handle: f.message.ReceiptHandle, seconds: this.o.visibilityTimeout })
        .catch((e: Error) => this.emit("error", e, "ChangeMessageVisibility"));
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => (clearTimeout(t), resolve());
    const t = setTimeout(() => (signal.removeEventListener("abort", onAbort), resolve()), ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
