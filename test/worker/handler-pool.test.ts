import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HandlerPool } from "../../worker/handler-pool";
import { createLogger } from "../../worker/log";
import { CREDENTIALS, eventually, REGION, TestSqs } from "../support/sqs";

const RECORD = path.join(__dirname, "..", "support", "handlers", "record.js");

interface Line {
  event: string;
  body: string;
  thread: string;
}

/**
 * The handler pool on its own, with real worker threads consuming a real (embedded) SQS: which
 * thread each message ran in, read from the "start|done <body> <pid>.<thread>" lines record.js
 * appends in the order they happen.
 */
describe("the handler pool's threads (WORKER_HANDLER), each consuming the queue itself", function () {
  this.timeout(60_000);
  let sqs: TestSqs;
  let dir: string;
  let n = 0;
  const pools: HandlerPool[] = [];

  before(async () => (sqs = await TestSqs.start()));
  after(async () => sqs.stop());
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-pool-"))));
  afterEach(async () => {
    await Promise.all(pools.splice(0).map(async (p) => (await p.source.drain(1_000), await p.stop())));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function pool(o: {
    maxWorkers: number;
    threads: number;
    env?: NodeJS.ProcessEnv;
    modulePath?: string;
    processingTimeoutMs?: number;
    abortGraceMs?: number;
    waitTimeSeconds?: number;
    visibilityTimeout?: number;
  }) {
    const q = await sqs.queuePair(`pool-${n++}`, { visibilityTimeout: o.visibilityTimeout });
    const file = path.join(dir, "record");
    fs.writeFileSync(file, "");
    const p = new HandlerPool({
      modulePath: o.modulePath ?? RECORD,
      maxWorkers: o.maxWorkers,
      threads: o.threads,
      abortGraceMs: o.abortGraceMs ?? 5_000,
      consume: {
        queueUrl: q.url,
        maxMessages: 10,
        waitTimeSeconds: o.waitTimeSeconds ?? 1,
        visibilityTimeout: o.visibilityTimeout ?? 30,
        processingTimeoutMs: o.processingTimeoutMs ?? 30_000,
        retryDelaySeconds: 600,
        region: REGION,
        endpoint: sqs.endpoint,
      },
      log: createLogger("silent"),
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
        RECORD_FILE: file,
        ...o.env,
      },
    });
    pools.push(p);
    await p.start();
    const lines = (): Line[] =>
      fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => {
          const [event, body, thread] = l.split(" ");
          return { event, body, thread };
        });
    return { pool: p, q, lines };
  }

  /** The most handlers that ran at once in any one thread, from the order of the record's lines. */
  function peakPerThread(lines: Line[]): number {
    const running = new Map<string, number>();
    let peak = 0;
    for (const l of lines) {
      const now = (running.get(l.thread) ?? 0) + (l.event === "start" ? 1 : l.event === "done" ? -1 : 0);
      running.set(l.thread, now);
      peak = Math.max(peak, now);
    }
    return peak;
  }

  it("puts every slot in one thread while handlers are cheap: one receive stream, one SDK client, full batches", async () => {
    // 20 ms of waiting a message: the thread is busy well under a third of the time, even on a slow machine.
    const { pool: p, q, lines } = await pool({ maxWorkers: 10, threads: 2, env: { HANDLER_MS: "20" } });
    await sqs.send(q.url, Array.from({ length: 300 }, (_, i) => `m${i}`));
    p.source.start();
    assert.ok(await eventually(() => lines().filter((l) => l.event === "done").length === 300, 30_000));
    // A fresh thread's first messages run cold and may measure busy enough to spread for a window:
    // the steady state is what packing is for.
    const later = lines().filter((l) => l.event === "start").slice(100);
    assert.equal(new Set(later.map((l) => l.thread)).size, 1, "the last 200 messages all ran in one thread");
    const stats = p.stats();
    assert.ok(stats.received / stats.receives >= 5, `${(stats.received / stats.receives).toFixed(1)} messages a receive`);
  });

  it("spreads handlers that compute over every thread, so that they use every core, never past a thread's share", async () => {
    const { pool: p, q, lines } = await pool({ maxWorkers: 4, threads: 2, env: { HANDLER_CPU_MS: "20" } });
    await sqs.send(q.url, Array.from({ length: 120 }, (_, i) => `c${i}`));
    p.source.start();
    assert.ok(await eventually(() => lines().filter((l) => l.event === "done").length === 120, 30_000));
    const later = lines().filter((l) => l.event === "start").slice(20);
    const perThread = new Map<string, number>();
    for (const l of later) perThread.set(l.thread, (perThread.get(l.thread) ?? 0) + 1);
    assert.equal(perThread.size, 2, "both threads ran messages");
    for (const k of perThread.values()) assert.ok(k >= 30, `each thread ran a fair share of 100: ${JSON.stringify([...perThread])}`);
  });

  it("never lets a thread run more than its own slot where each slot has a thread: a spinning handler stops no other slot", async () => {
    const { pool: p, q, lines } = await pool({ maxWorkers: 2, threads: 2, env: { HANDLER_MS: "5" } });
    await sqs.send(q.url, Array.from({ length: 60 }, (_, i) => `s${i}`));
    p.source.start();
    assert.ok(await eventually(() => lines().filter((l) => l.event === "done").length === 60, 30_000));
    assert.equal(peakPerThread(lines()), 1, "one handler at a time in each thread");
    assert.equal(new Set(lines().map((l) => l.thread)).size, 2, "both threads consumed");
  });

  it("gives a handler that reads its signal only after the timeout an aborted one, with the timeout as its reason", async () => {
    const handler = path.join(dir, "late-reader.js");
    fs.writeFileSync(
      handler,
      `exports.handle = async (message, ctx) => {
        await new Promise((r) => setTimeout(r, 300));
        require("node:fs").writeFileSync(${JSON.stringify(path.join(dir, "saw"))}, ctx.signal.aborted ? ctx.signal.reason.name : "not aborted");
        throw new Error("gave up");
      };`,
    );
    const { pool: p, q } = await pool({ maxWorkers: 1, threads: 1, modulePath: handler, processingTimeoutMs: 50 });
    const failures: string[] = [];
    p.source.on("failed", (_m, e) => failures.push(e.message));
    await sqs.send(q.url, ["m"]);
    p.source.start();
    assert.ok(await eventually(() => failures.length === 1, 10_000));
    assert.match(failures[0], /processing took longer than 0.05 s/);
    assert.equal(fs.readFileSync(path.join(dir, "saw"), "utf8"), "ProcessingTimeout");
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
    const { pool: p, q } = await pool({ maxWorkers: 10, threads: 2, modulePath: handler });
    let processed = 0;
    const failed: string[] = [];
    p.source.on("processed", () => processed++);
    p.source.on("failed", (_m, e) => failed.push(`${e.name}: ${e.message}`));
    await sqs.send(q.url, ["spread-ctx", "nothing", "value", "throw", "throw-string", "resolve", "reject", "thenable", "thenable-fail", "throwing-then"]);
    p.source.start();
    assert.ok(await eventually(() => processed + failed.length === 10, 10_000));
    assert.equal(processed, 5);
    assert.deepEqual(failed.sort(), [
      "Error: a bare string",
      "Error: then getter threw",
      "Error: thrown at once",
      "RangeError: thenable refused",
      "TypeError: rejected later",
    ].sort());
    // Nothing is left running: every slot of the shared count is free again.
    assert.ok(await eventually(() => p.source.inFlight === 0 && p.capacity() === 10, 5_000));
  });

  it("ends a thread whose handler ignores its timeout once the others in it finish, fails only that message, and refills its slots", async () => {
    const handler = path.join(dir, "ignore.js");
    fs.writeFileSync(
      handler,
      `exports.handle = (message) => {
        if (message.Body === "ignore") return new Promise(() => setInterval(() => undefined, 1000));
        if (message.Body === "slow") return new Promise((r) => setTimeout(r, 400));
      };`,
    );
    // Both slots in one thread: "ignore" is told to stop at 600 ms and given up on 200 ms later,
    // while "slow", started 500 ms after it, is still running and must be let finish.
    const { pool: p, q } = await pool({ maxWorkers: 2, threads: 1, modulePath: handler, processingTimeoutMs: 600, abortGraceMs: 200 });
    const failed: string[] = [];
    let processed = 0;
    const recycled: string[] = [];
    p.source.on("failed", (_m, e) => failed.push(e.name));
    p.source.on("processed", () => processed++);
    p.on("recycled", (_u, why) => recycled.push(why));
    await sqs.send(q.url, ["ignore"]);
    p.source.start();
    assert.ok(await eventually(() => p.source.inFlight === 1, 10_000));
    await new Promise((r) => setTimeout(r, 500));
    await sqs.send(q.url, ["slow"]);
    assert.ok(await eventually(() => recycled.length === 1 && failed.length === 1, 10_000), "the thread was ended once the other message finished");
    assert.equal(processed, 1, "the other message finished first");
    assert.deepEqual(failed, ["ProcessingTimeout"]);
    // The other message's delete was acknowledged before the thread was ended: only the failed one
    // is left hidden (for its retry delay), nothing comes back after the visibility timeout.
    assert.ok(await eventually(async () => (await sqs.depth(q.url)).inFlight === 1, 3_000), JSON.stringify(await sqs.depth(q.url)));
    // A fresh thread takes both slots again.
    await sqs.send(q.url, ["a", "b", "c"]);
    assert.ok(await eventually(() => processed === 4, 10_000));
    assert.ok(await eventually(() => p.source.inFlight === 0, 5_000));
  });

  /** A handler module in the test's directory that appends each message's body to `runs` as it starts. */
  function handlerFile(name: string, body: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(
      file,
      `const fs = require("node:fs");
      const runs = ${JSON.stringify(path.join(dir, "runs"))};
      exports.handle = (message, ctx) => {
        fs.appendFileSync(runs, message.Body + "\\n");
        ${body}
      };`,
    );
    return file;
  }

  const runs = (): string[] => (fs.existsSync(path.join(dir, "runs")) ? fs.readFileSync(path.join(dir, "runs"), "utf8").split("\n").filter(Boolean) : []);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("replaces a thread whose handler ignored its timeout and then finished, and goes on consuming", async () => {
    // Two slots packed in one thread, with an idle long poll open when "late" is given up on (so
    // the thread is not ended at once); "late" then finishes after all. The thread it held must not
    // leave the worker idle.
    const modulePath = handlerFile("late.js", `if (message.Body === "late") return new Promise((r) => setTimeout(r, 600));`);
    const { pool: p, q } = await pool({ maxWorkers: 2, threads: 1, modulePath, processingTimeoutMs: 300, abortGraceMs: 200, waitTimeSeconds: 5 });
    const recycled: string[] = [];
    p.on("recycled", (_u, why) => recycled.push(why));
    await sqs.send(q.url, ["late"]);
    p.source.start();
    assert.ok(await eventually(() => recycled.length === 1, 10_000), "the thread was given up on");
    await sleep(500);
    await sqs.send(q.url, ["a", "b", "c"]);
    assert.ok(await eventually(() => ["a", "b", "c"].every((b) => runs().includes(b)), 10_000), `ran: ${runs().join(",")}`);
    assert.ok(await eventually(() => p.source.inFlight === 0 && p.capacity() === 2, 10_000), "every slot is back");
  });

  it("ends a thread left with only a handler that ignores its timeout, even while a long poll was open when it gave up", async () => {
    // Packed in one thread with an idle long poll open: the receive comes back after the handler
    // was given up on, and that must be looked at too.
    const modulePath = handlerFile("ignore-alone.js", `return new Promise(() => setInterval(() => undefined, 1_000));`);
    const { pool: p, q } = await pool({ maxWorkers: 2, threads: 1, modulePath, processingTimeoutMs: 300, abortGraceMs: 200, waitTimeSeconds: 2 });
    const failed: string[] = [];
    p.source.on("failed", (_m, e) => failed.push(e.name));
    await sqs.send(q.url, ["ignore"]);
    p.source.start();
    assert.ok(await eventually(() => failed.length === 1, 15_000), "the ignoring handler's thread was ended and its message failed");
    assert.deepEqual(failed, ["ProcessingTimeout"]);
    await sqs.send(q.url, ["x"]);
    assert.ok(await eventually(() => runs().includes("x"), 10_000), "a fresh thread consumes");
  });

  it("deletes a message a thread had processed but not yet deleted when a handler blocked it for good", async () => {
    // "quick" is processed and its delete waits a few ms for others to share its batch; "spin",
    // received next, blocks the thread before the delete goes out. The thread is ended: the main
    // thread makes the delete, so "quick" does not come back after the visibility timeout.
    const modulePath = handlerFile("spin-after.js", `if (message.Body === "spin") for (;;);`);
    const { pool: p, q } = await pool({ maxWorkers: 1, threads: 1, modulePath, processingTimeoutMs: 300, abortGraceMs: 200, visibilityTimeout: 2 });
    const failed: string[] = [];
    p.source.on("failed", (_m, e) => failed.push(e.name));
    await sqs.send(q.url, ["quick", "spin"]);
    p.source.start();
    assert.ok(await eventually(() => failed.length === 1, 15_000));
    await sleep(4_000);
    assert.deepEqual(runs(), ["quick", "spin"], "each ran once");
    assert.deepEqual(await sqs.depth(q.url), { visible: 0, inFlight: 1, delayed: 0 }, "only the failed one is hidden, for its retry delay");
  });

  it("hands back the rest of a batch whose first message blocks its thread before the others start", async () => {
    const modulePath = handlerFile("spin-first.js", `if (message.Body === "spin") for (;;);`);
    const { pool: p, q } = await pool({ maxWorkers: 3, threads: 1, modulePath, processingTimeoutMs: 300, abortGraceMs: 200 });
    await sqs.send(q.url, ["spin", "a", "b"]);
    p.source.start();
    // Back in the queue when the thread is ended (a second or so), not after the 30 s visibility timeout.
    assert.ok(await eventually(() => runs().filter((r) => r !== "spin").length >= 2, 10_000), runs().join(","));
    assert.deepEqual([...new Set(runs())].sort(), ["a", "b", "spin"]);
  });

  it("lets a thread told to hurry keep its open long poll until it comes back, and hands back what it brings", async () => {
    // A second signal on an idle worker: ending the thread while its receive is open would strand
    // whatever SQS delivers into that receive.
    const { pool: p, q } = await pool({ maxWorkers: 2, threads: 1, abortGraceMs: 200, waitTimeSeconds: 3 });
    let polled = 0;
    p.source.on("polled", () => polled++);
    p.source.start();
    assert.ok(await eventually(() => polled >= 1, 10_000), "an empty receive came back: the next one is open now");
    const drained = p.source.drain(60_000);
    p.source.hurry("received SIGTERM again");
    await sleep(1_000);
    await sqs.send(q.url, ["late-1", "late-2"]);
    const { released } = await drained;
    assert.equal(released, 2);
    assert.deepEqual(await sqs.depth(q.url), { visible: 2, inFlight: 0, delayed: 0 }, "nothing stranded");
  });
});
