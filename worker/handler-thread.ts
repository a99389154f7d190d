/**
 * One handler thread (WORKER_HANDLER): loads the module once, then consumes the queue itself:
 * receives, runs the handler, deletes, on its own event loop, so that a message never crosses to
 * another thread on its way (docs/architecture.md, "Handler threads consume"). What it shares with
 * the main thread lives in shared memory (worker/slot-board.ts): the slot count every thread takes
 * from, its share of it, the messages it holds, its heartbeat. The main thread can always end it
 * (a `while (true) {}` in a handler), and then hands back what its ledger says it held.
 */
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parentPort, workerData } from "node:worker_threads";
import type { Message } from "@aws-sdk/client-sqs";
import { Consumer, type StopSignal } from "./consumer";
import { SMOKE_ATTRIBUTE } from "./contract";
import type { FromThread, MessageNote, ThreadData, ThreadError, ThreadEvents, ToThread } from "./handler-protocol";
import { Ledger, SlotCount } from "./slot-board";
import { staticCredentials, workerSqsClient } from "./sqs-client";

type Handle = (message: Message, ctx: { signal: AbortSignal }) => unknown;

/**
 * A running message's stop: its AbortSignal is made only when the handler asks for it (an
 * AbortController costs about 6 µs on Node 20, more than a no-op handler's whole run here).
 */
class Stop {
  private controller?: AbortController;
  private reason?: Error;

  signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: Error): void {
    this.reason ??= reason;
    this.controller?.abort(reason);
  }
}

const port = parentPort!;
const data = workerData as ThreadData;
const slots = new SlotCount(data.slots, data.threads, data.holders);
const ledger = new Ledger(data.ledger, data.ledgerCapacity);
let consumer: Consumer | undefined;
/** Takes no more messages: drained, or holding a handler that would not stop. */
let retiring = false;
let draining = false;
/** Handlers told to stop that went on past the grace period. */
const ignoring = new Set<Message>();
let heapReportedAt = 0;

function describe(e: unknown): ThreadError {
  if (!(e instanceof Error)) return { name: "Error", message: String(e) };
  const code = (e as { Code?: string }).Code;
  return { name: e.name, message: e.message, stack: e.stack, ...(code ? { code } : {}) };
}

function post(m: FromThread): void {
  port.postMessage(m);
}

function note(m: Message): MessageNote {
  const smoke = m.MessageAttributes?.[SMOKE_ATTRIBUTE]?.StringValue;
  return { id: m.MessageId, receives: Number(m.Attributes?.ApproximateReceiveCount ?? 1), ...(smoke ? { smoke } : {}) };
}

const fresh = (): ThreadEvents => ({ processed: [], failed: [], released: [], polled: 0, errors: [], deleted: 0, handled: 0, openReceives: 0 });
let events = fresh();
let handled = 0;
let flushScheduled = false;

/**
 * What happened goes to the main thread at most every REPORT_MS, as one post: waking the main
 * thread for every batch cost more than the main thread then did. Nothing waits on a report: a
 * thread keeps its own slots, budget and memory limit; drains and ends flush at once.
 */
const REPORT_MS = 10;

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setTimeout(flush, REPORT_MS);
}

function flush(): void {
  flushScheduled = false;
  const now = Date.now();
  // The pool recycles the biggest thread first when the worker is over WORKER_MAX_RSS_MB: its
  // JavaScript heap and the buffers it holds outside it (this thread's own, not the process's).
  if (now - heapReportedAt > 100) {
    const { heapUsed, external } = process.memoryUsage();
    events.heapBytes = heapUsed + external;
    heapReportedAt = now;
  }
  events.handled = handled;
  events.openReceives = consumer?.openReceives ?? 0;
  if (consumer) events.stats = { ...consumer.stats };
  post({ t: "events", ...events });
  events = fresh();
}

async function load(modulePath: string): Promise<Handle> {
  const resolved = path.resolve(modulePath);
  let mod: { handle?: Handle; default?: Handle | { handle?: Handle } };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(resolved);
  } catch (e) {
    // An ES module (Node 20 cannot require one): import it instead.
    if ((e as NodeJS.ErrnoException).code !== "ERR_REQUIRE_ESM") throw e;
    mod = (await import(pathToFileURL(resolved).href)) as typeof mod;
  }
  const handle =
    mod.handle ?? (typeof mod.default === "function" ? mod.default : (mod.default as { handle?: Handle } | undefined)?.handle);
  if (typeof handle !== "function") throw new Error(`${resolved} exports no handle(message, { signal }) function`);
  return handle;
}

const DONE = Promise.resolve();

/** Runs one message's handler; settles once it has really stopped (a handler may ignore its signal). */
function runner(handle: Handle) {
  return (message: Message, signal: StopSignal): Promise<void> => {
    const stop = new Stop();
    // A plain object with its own enumerable `signal`, so that `{ ...ctx }` carries it too.
    const ctx = {
      get signal() {
        return stop.signal();
      },
    };
    let result: unknown;
    const began = performance.now();
    try {
      result = handle(message, ctx);
      ledger.handlerTime(performance.now() - began);
      // Any thenable is awaited as a promise would be (reading its `then` may throw too).
      if (result == null || typeof (result as PromiseLike<unknown>).then !== "function") return DONE;
    } catch (e) {
      ledger.handlerTime(performance.now() - began);
      return Promise.reject(e);
    }
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    const onAbort = () => {
      const reason = signal.reason as Error;
      stop.abort(reason);
      grace = setTimeout(() => {
        if (settled) return;
        ignoring.add(message);
        post({ t: "ignored", message: note(message), reason: describe(reason) });
        retire();
      }, data.abortGraceMs);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const end = () => {
      settled = true;
      clearTimeout(grace);
      signal.removeEventListener("abort", onAbort);
      ignoring.delete(message);
    };
    return Promise.resolve(result).then(end, (e: unknown) => {
      end();
      throw e;
    });
  };
}

/** Takes no more messages; in flight finishes where it can. */
function retire(): void {
  if (retiring) return checkStuck();
  retiring = true;
  consumer?.stop();
  checkStuck();
}

let stuck = false;

/**
 * Only handlers that would not stop are left, and no receive is open (ending the thread would
 * strand what it brings): once what the others' messages became is acknowledged by SQS, the main
 * thread ends this thread and fails them. Looked at when the thread retires and on every heartbeat.
 */
function checkStuck(): void {
  const c = consumer;
  if (stuck || !retiring || ignoring.size === 0 || !c) return;
  if (c.inFlight > ignoring.size || c.openReceives > 0) return;
  stuck = true;
  void c.flushWrites().finally(() => {
    flush();
    post({ t: "stuck" });
  });
}

async function drain(ms: number): Promise<void> {
  if (draining) return;
  draining = true;
  retiring = true;
  if (consumer) await consumer.drain(ms);
  flush();
  post({ t: "drained" });
}

function startConsuming(handle: Handle): void {
  if (consumer || draining) return;
  const o = data.consume;
  // The SDK warns of an old Node once a process; the main thread has said it already.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const sqs = workerSqsClient({ region: o.region ?? "us-east-1", endpoint: o.endpoint, credentials: staticCredentials(process.env) });
  const maxRss = o.maxRssBytes;
  consumer = new Consumer({
    sqs,
    queueUrl: o.queueUrl,
    concurrency: o.concurrency,
    maxMessages: o.maxMessages,
    waitTimeSeconds: o.waitTimeSeconds,
    visibilityTimeout: o.visibilityTimeout,
    processingTimeoutMs: o.processingTimeoutMs,
    retryDelaySeconds: o.retryDelaySeconds,
    process: runner(handle),
    // Above WORKER_MAX_RSS_MB no message starts: the main thread replaces the biggest thread first.
    capacity: maxRss ? () => (process.memoryUsage.rss() > maxRss ? 0 : o.concurrency) : undefined,
    board: { slots, thread: data.index, holder: data.holder, ledger },
    budget: o.budget,
  });
  consumer.on("processed", (m, ms) => {
    handled++;
    events.processed.push([note(m), ms]);
    scheduleFlush();
  });
  consumer.on("failed", (m, e, retryIn) => {
    handled++;
    events.failed.push([note(m), describe(e), retryIn]);
    scheduleFlush();
  });
  consumer.on("released", (m) => {
    events.released.push(note(m));
    scheduleFlush();
  });
  consumer.on("polled", () => {
    events.polled++;
    scheduleFlush();
  });
  consumer.on("error", (e, operation) => {
    events.errors.push([operation, describe(e)]);
    scheduleFlush();
  });
  consumer.on("deleted", (n) => {
    events.deleted += n;
    scheduleFlush();
  });
  consumer.on("spent", () => {
    post({ t: "spent" });
    void drain(o.processingTimeoutMs + data.abortGraceMs);
  });
  consumer.start();
}

async function main(): Promise<void> {
  // A stray rejected promise in a handler must not end the thread and the other messages in it.
  process.on("unhandledRejection", (e) => post({ t: "warn", msg: "unhandled rejection in a handler", error: describe(e) }));
  // A throw from a handler's timer: which message threw cannot be told, so none is blamed. The
  // thread finishes what it holds (within the grace period) and hands back the rest, then goes.
  let crashed = false;
  process.on("uncaughtException", (e) => {
    if (crashed) return;
    crashed = true;
    post({ t: "crashed", error: describe(e) });
    void drain(data.abortGraceMs);
  });
  // The heartbeat the main thread tells a blocked thread by; and a look at the shared slots, which
  // other threads free without waking this one.
  setInterval(() => {
    ledger.beat();
    consumer?.wake();
    checkStuck();
  }, 50);
  ledger.beat();
  let handle: Handle;
  try {
    handle = await load(data.modulePath);
  } catch (e) {
    post({ t: "load-error", error: describe(e) });
    return;
  }
  port.on("message", (m: ToThread) => {
    if (m.t === "start") startConsuming(handle);
    else if (m.t === "ping") post({ t: "pong" });
    else if (m.t === "drain") void drain(m.ms);
    else if (m.t === "hurry") {
      retiring = true;
      consumer?.hurry(m.why);
    }
  });
  post({ t: "ready" });
}

void main();
