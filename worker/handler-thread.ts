/**
 * One handler thread (WORKER_HANDLER): loads the module once, runs the messages the pool posts to
 * it, and reports each outcome. It runs in a worker thread so that nothing a handler does (a
 * `while (true) {}`, an ignored abort signal, a throw from a timer) can stop the worker's own loop:
 * the pool can always terminate the thread, and the worker can always drain and exit.
 */
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { parentPort, workerData } from "node:worker_threads";
import type { Message } from "@aws-sdk/client-sqs";
import type { FromThread, ThreadError, ToThread } from "./handler-protocol";

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
const running = new Map<number, Stop>();
let done: number[] = [];
let failed: { id: number; error: ThreadError }[] = [];
let flushScheduled = false;
let heapReportedAt = 0;

function threadMemory(): number {
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

function describe(e: unknown): ThreadError {
  return e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { name: "Error", message: String(e) };
}

function post(m: FromThread): void {
  port.postMessage(m);
}

/** Outcomes finished in the same turn go back as one message: one hop per turn, not per message. */
function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    const now = Date.now();
    // The pool recycles the biggest thread first when the worker is over WORKER_MAX_RSS_MB: its
    // JavaScript heap and the buffers it holds outside it (this thread's own, not the process's).
    const heapBytes = now - heapReportedAt > 100 ? threadMemory() : undefined;
    if (heapBytes !== undefined) heapReportedAt = now;
    post({ t: "results", done, failed, heapBytes });
    done = [];
    failed = [];
  });
}

function succeeded(id: number): void {
  running.delete(id);
  done.push(id);
  scheduleFlush();
}

function threw(id: number, e: unknown): void {
  running.delete(id);
  failed.push({ id, error: describe(e) });
  scheduleFlush();
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

function run(handle: Handle, id: number, message: Message): void {
  const stop = new Stop();
  running.set(id, stop);
  // A plain object with its own enumerable `signal`, so that `{ ...ctx }` carries it too.
  const ctx = {
    get signal() {
      return stop.signal();
    },
  };
  let result: unknown;
  let thenable: boolean;
  try {
    result = handle(message, ctx);
    // Any thenable is awaited as a promise would be (reading its `then` may throw too).
    thenable = result != null && typeof (result as PromiseLike<unknown>).then === "function";
  } catch (e) {
    return threw(id, e);
  }
  if (!thenable) return succeeded(id);
  Promise.resolve(result).then(
    () => succeeded(id),
    (e: unknown) => threw(id, e),
  );
}

async function main(): Promise<void> {
  const { modulePath } = workerData as { modulePath: string };
  // A stray rejected promise in a handler must not end the thread and the other messages in it.
  process.on("unhandledRejection", (e) => post({ t: "warn", msg: "unhandled rejection in a handler", error: describe(e) }));
  let handle: Handle;
  try {
    handle = await load(modulePath);
  } catch (e) {
    post({ t: "load-error", error: describe(e) });
    return;
  }
  port.on("message", (m: ToThread) => {
    if (m.t === "run") for (const job of m.jobs) run(handle, job.id, job.message);
    else if (m.t === "ping") post({ t: "pong" });
    else if (m.t === "abort") {
      const reason = Object.assign(new Error(m.reason.message), { name: m.reason.name });
      running.get(m.id)?.abort(reason);
    }
  });
  post({ t: "ready" });
}

void main();
