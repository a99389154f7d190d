import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Message } from "@aws-sdk/client-sqs";
import { ProcessingTimeout } from "../../worker/consumer";
import { HandlerPool } from "../../worker/handler-pool";
import { createLogger } from "../../worker/log";

const RECORD = path.join(__dirname, "..", "support", "handlers", "record.js");

/**
 * The handler pool on its own, with real worker threads: which thread each message runs in. A
 * message's thread is read from the "start <body> <pid>.<thread>" lines record.js writes.
 */
describe("the handler pool's threads (WORKER_HANDLER)", function () {
  this.timeout(60_000);
  let dir: string;
  const pools: HandlerPool[] = [];

  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-pool-"))));
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function pool(o: { maxWorkers: number; threads: number; env?: NodeJS.ProcessEnv; modulePath?: string }): Promise<{ pool: HandlerPool; threadOf: () => Map<string, string> }> {
    const file = path.join(dir, "record");
    fs.writeFileSync(file, "");
    const p = new HandlerPool({
      modulePath: o.modulePath ?? RECORD,
      maxWorkers: o.maxWorkers,
      threads: o.threads,
      abortGraceMs: 5_000,
      log: createLogger("silent"),
      env: { ...process.env, RECORD_FILE: file, ...o.env },
    });
    pools.push(p);
    await p.start();
    const threadOf = () =>
      new Map(
        fs
          .readFileSync(file, "utf8")
          .split("\n")
          .filter((l) => l.startsWith("start "))
          .map((l) => l.split(" ").slice(1) as [string, string]),
      );
    return { pool: p, threadOf };
  }

  /** Runs `batches` receives' worth of `size` messages, each batch at once, one batch after another. */
  async function runBatches(p: HandlerPool, batches: number, size: number, prefix = "b"): Promise<string[][]> {
    const out: string[][] = [];
    for (let b = 0; b < batches; b++) {
      const bodies = Array.from({ length: size }, (_, i) => `${prefix}${b}m${i}`);
      const message = (body: string): Message => ({ MessageId: body, ReceiptHandle: body, Body: body });
      await Promise.all(bodies.map((body) => p.process(message(body), new AbortController().signal)));
      out.push(bodies);
    }
    return out;
  }

  it("packs a batch of cheap async handlers into one thread: one wake-up each way, not one per thread", async () => {
    // 20 ms of waiting a message: the thread is busy well under a third of the time, even on a slow machine.
    const { pool: p, threadOf } = await pool({ maxWorkers: 10, threads: 2, env: { HANDLER_MS: "20" } });
    // A fresh thread's first messages run cold (lazy compilation, first file writes) and may measure
    // busy enough to spread for a window: the steady state is what packing is for.
    await runBatches(p, 5, 10, "warm");
    const batches = await runBatches(p, 20, 10);
    const threads = threadOf();
    const split = batches.filter((b) => new Set(b.map((body) => threads.get(body))).size > 1);
    assert.deepEqual(split, [], "every batch ran in a single thread");
  });

  it("spreads handlers that compute over every thread, so that they use every core", async () => {
    const { pool: p, threadOf } = await pool({ maxWorkers: 4, threads: 2, env: { HANDLER_CPU_MS: "20" } });
    const batches = await runBatches(p, 15, 4);
    const threads = threadOf();
    // The first batches (80 ms each in one thread) go before the pool has measured how busy its
    // threads are: it measures every 100 ms.
    const later = batches.slice(3);
    const packed = later.filter((b) => new Set(b.map((body) => threads.get(body))).size === 1);
    assert.deepEqual(packed, [], "no batch of computing handlers was packed into one thread");
    const perThread = new Map<string, number>();
    for (const body of later.flat()) perThread.set(threads.get(body)!, (perThread.get(threads.get(body)!) ?? 0) + 1);
    assert.deepEqual([...perThread.values()], [24, 24], "each thread ran its share (2 of every 4)");
  });

  it("never packs where each slot has a thread of its own: a spinning handler stops no other slot", async () => {
    const { pool: p, threadOf } = await pool({ maxWorkers: 2, threads: 2, env: { HANDLER_MS: "5" } });
    const batches = await runBatches(p, 20, 2);
    const threads = threadOf();
    assert.deepEqual(
      batches.filter((b) => threads.get(b[0]) === threads.get(b[1])),
      [],
      "the two messages of every batch ran in different threads",
    );
  });

  it("gives a handler that reads its signal only after the timeout an aborted one, with the timeout as its reason", async () => {
    const handler = path.join(dir, "late-reader.js");
    fs.writeFileSync(
      handler,
      `exports.handle = async (message, ctx) => {
        await new Promise((r) => setTimeout(r, 300));
        if (!ctx.signal.aborted) return;
        throw new Error("saw " + ctx.signal.reason.name);
      };`,
    );
    const { pool: p } = await pool({ maxWorkers: 1, threads: 1, modulePath: handler });
    const stop = new AbortController();
    setTimeout(() => stop.abort(new ProcessingTimeout(50)), 50);
    await assert.rejects(p.process({ MessageId: "m", ReceiptHandle: "m", Body: "m" }, stop.signal), /saw ProcessingTimeout/);
  });

  it("settles every shape a handler may return (nothing, a value, a throw, a promise, a thenable), and ctx spreads with its signal", async () => {
    const handler = path.join(dir, "shapes.js");
    fs.writeFileSync(
      handler,
      `exports.handle = (message, ctx) => {
        switch (message.Body) {
          case "spread-ctx": return { ...ctx }.signal instanceof AbortSignal ? undefined : Promise.reject(new Error("no signal in { ...ctx }"));
          case "nothing": return undefined;
          case "value": return 42;
          case "throw": throw new Error("thrown at once");
          case "throw-string": throw "a bare string";
          case "resolve": return new Promise((r) => setTimeout(r, 20));
          case "reject": return Promise.reject(new TypeError("rejected later"));
          case "thenable": return { then: (ok) => setTimeout(ok, 20) };
          case "thenable-fail": return { then: (_ok, fail) => setTimeout(() => fail(new RangeError("thenable refused")), 20) };
          case "throwing-then": return { get then() { throw new Error("then getter threw"); } };
        }
      };`,
    );
    const { pool: p } = await pool({ maxWorkers: 10, threads: 2, modulePath: handler });
    const run = (body: string) => p.process({ MessageId: body, ReceiptHandle: body, Body: body }, new AbortController().signal);
    const outcomes = await Promise.allSettled(
      ["spread-ctx", "nothing", "value", "throw", "throw-string", "resolve", "reject", "thenable", "thenable-fail", "throwing-then"].map(run),
    );
    const seen = outcomes.map((o) => (o.status === "fulfilled" ? "ok" : `${(o.reason as Error).name}: ${(o.reason as Error).message}`));
    assert.deepEqual(seen, [
      "ok",
      "ok",
      "ok",
      "Error: thrown at once",
      "Error: a bare string",
      "ok",
      "TypeError: rejected later",
      "ok",
      "RangeError: thenable refused",
      "Error: then getter threw",
    ]);
    // Nothing is left running: the pool's every slot is free again.
    assert.equal(p.capacity(), 10);
  });
});
