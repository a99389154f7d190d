import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { EXIT } from "../../worker/contract";
import { runWorker } from "../../worker/run";
import { ensureBundle, forgetInProcessHandler, inProcessWorkerEnv, recordFile, startWorker } from "../support/worker-process";
import { eventually, sleep, TestSqs } from "../support/sqs";

/** Lines of the record handler: "done <body> <pid>.<thread>". */
const done = (lines: string[]) => lines.filter((l) => l.startsWith("done"));
const threadsOf = (lines: string[]) => new Set(done(lines).map((l) => l.split(" ")[2]));

describe("recycling (the seeds' cron restart, done in place)", function () {
  this.timeout(60_000);
  let sqs: TestSqs;
  let n = 0;
  before(async () => (sqs = await TestSqs.start()));
  after(async () => {
    await sqs.stop();
    forgetInProcessHandler();
  });

  /** A worker in this process; `stop()` sends it SIGTERM and returns its exit code. */
  async function run(extra: Record<string, string>, bodies: string[], handlerMs = "0") {
    const q = await sqs.queuePair(`recycle-${n++}`);
    await sqs.send(q.url, bodies);
    const rec = recordFile();
    let code: number | undefined;
    const running = runWorker({
      env: inProcessWorkerEnv(sqs, q.url, rec, handlerMs, { MAX_WORKERS: "2", LOG_LEVEL: "error", ...extra }),
      recycleCheckMs: 50,
    }).then((c) => (code = c));
    return {
      q,
      rec,
      exited: () => code,
      stop: async () => {
        if (code === undefined) process.emit("SIGTERM", "SIGTERM");
        return running;
      },
    };
  }

  it("replaces a handler thread after WORKER_MAX_MESSAGES, while the worker and its other thread go on", async () => {
    const w = await run({ WORKER_MAX_MESSAGES: "5" }, Array.from({ length: 40 }, (_, i) => `r${i}`), "10");
    try {
      assert.ok(await eventually(() => done(w.rec.lines()).length === 40, 30_000), `done ${done(w.rec.lines()).length} of 40`);
      const lines = w.rec.lines();
      const perThread = new Map<string, number>();
      for (const l of done(lines)) perThread.set(l.split(" ")[2], (perThread.get(l.split(" ")[2]) ?? 0) + 1);
      assert.ok([...perThread.values()].every((k) => k <= 5), `no thread past 5: ${JSON.stringify([...perThread])}`);
      assert.ok(perThread.size >= 8, `40 messages at 5 a thread: ${perThread.size} threads`);
      assert.equal(new Set(done(lines).map((l) => l.split(" ")[2].split(".")[0])).size, 1, "one worker process throughout");
      assert.equal(w.exited(), undefined, "the worker itself was never recycled: systemd sees no restart");
      assert.equal(new Set(done(lines).map((l) => l.split(" ")[1])).size, 40, "each message once");
    } finally {
      assert.equal(await w.stop(), EXIT.DRAINED);
      w.rec.remove();
    }
  });

  it("replaces handler threads older than WORKER_MAX_LIFETIME one at a time, never stopping the worker", async () => {
    const w = await run({ WORKER_MAX_LIFETIME: "1" }, [], "20");
    try {
      for (let i = 0; i < 30; i++) {
        await sqs.send(w.q.url, [`t${i}`]);
        await sleep(100);
      }
      assert.ok(await eventually(() => done(w.rec.lines()).length === 30));
      assert.ok(threadsOf(w.rec.lines()).size >= 3, `3 s of work on threads living 1 s: ${threadsOf(w.rec.lines()).size} threads`);
      assert.equal(w.exited(), undefined);
    } finally {
      assert.equal(await w.stop(), EXIT.DRAINED);
      w.rec.remove();
    }
  });

  it("exits with the recycle code when the worker stays above WORKER_MAX_RSS_MB with every thread replaced", async () => {
    // No Node process fits in 1 MiB: replacing threads cannot help, so the worker itself goes.
    const w = await run({ WORKER_MAX_RSS_MB: "1" }, Array.from({ length: 50 }, (_, i) => `m${i}`), "10");
    assert.ok(await eventually(() => w.exited() !== undefined, 20_000));
    assert.equal(w.exited(), EXIT.RECYCLED);
    const lines = w.rec.lines();
    assert.equal(lines.filter((l) => l.startsWith("start")).length, done(lines).length, "it finished what it started");
    assert.ok(await eventually(async () => (await sqs.depth(w.q.url)).inFlight === 0, 3_000), "and left nothing hidden");
    w.rec.remove();
  });

  it("in command mode (a fresh process per message already) recycles the worker itself after WORKER_MAX_MESSAGES", async () => {
    const rec = recordFile();
    const w = await run(
      { WORKER_HANDLER: "", WORKER_COMMAND: `echo "$(cat)" >> ${rec.file}`, WORKER_MAX_MESSAGES: "5" },
      Array.from({ length: 20 }, (_, i) => `c${i}`),
    );
    assert.ok(await eventually(() => w.exited() !== undefined, 20_000));
    assert.equal(w.exited(), EXIT.RECYCLED);
    const handled = rec.lines().length;
    assert.ok(handled >= 5 && handled <= 6, `handled ${handled}: the limit, plus what was in flight`);
    assert.ok(await eventually(async () => (await sqs.depth(w.q.url)).inFlight === 0, 3_000));
    assert.equal((await sqs.depth(w.q.url)).visible, 20 - handled);
    rec.remove();
    w.rec.remove();
  });
});

describe("recycling on memory, measured from outside the worker process (bundle)", function () {
  this.timeout(90_000);
  let sqs: TestSqs;
  before(async () => {
    await ensureBundle();
    sqs = await TestSqs.start();
  });
  after(async () => sqs.stop());

  const rssMb = (pid: number) => {
    try {
      return (Number(fs.readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * 4096) / 2 ** 20;
    } catch {
      return 0;
    }
  };

  it("keeps a leaking handler's worker near WORKER_MAX_RSS_MB: the leaking thread is replaced, overshoot about one message", async () => {
    const q = await sqs.queuePair("leak");
    const rec = recordFile();
    const LEAK_MB = 40;
    const messages = 16;
    const w = startWorker("bundle", {
      SQS_QUEUE_URL: q.url,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      WORKER_HANDLER: path.join(__dirname, "..", "support", "handlers", "record.js"),
      RECORD_FILE: rec.file,
      MAX_WORKERS: "1",
      SQS_WAIT_TIME: "1",
      LOG_LEVEL: "info",
    });
    try {
      // The limit sits 100 MiB above this worker at rest, so that 3 leaks fit and the 4th does not.
      assert.ok(await eventually(() => /worker started/.test(w.stdout()), 20_000));
      await sleep(500);
      const base = rssMb(w.child.pid!);
      w.child.kill("SIGTERM");
      await w.exited;
      const limit = Math.round(base + 100);
      const w2 = startWorker("bundle", {
        SQS_QUEUE_URL: q.url,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
        WORKER_HANDLER: path.join(__dirname, "..", "support", "handlers", "record.js"),
        RECORD_FILE: rec.file,
        HANDLER_MS: "50",
        MAX_WORKERS: "1",
        SQS_WAIT_TIME: "1",
        WORKER_MAX_RSS_MB: String(limit),
        LOG_LEVEL: "info",
      });
      assert.ok(await eventually(() => /worker started/.test(w2.stdout()), 20_000));
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMb(w2.child.pid!))), 5);
      await sqs.send(q.url, Array.from({ length: messages }, (_, i) => `leak:${LEAK_MB}:${i}`));
      assert.ok(await eventually(() => done(rec.lines()).length === messages, 60_000), `done ${done(rec.lines()).length}:\n${w2.stdout()}`);
      clearInterval(sampler);
      assert.equal(w2.child.exitCode, null, "the worker process itself was never recycled");
      assert.ok(threadsOf(rec.lines()).size >= 3, `leaking threads replaced: ${threadsOf(rec.lines()).size} threads`);
      assert.match(w2.stdout(), /recycling handler thread 0: the worker's resident memory \d+ MiB is above WORKER_MAX_RSS_MB/);
      // Over the limit by at most the message that crossed it (and the allocator's slack).
      assert.ok(peak <= limit + LEAK_MB + 25, `peak ${peak.toFixed(0)} MiB against a limit of ${limit} MiB`);
      w2.child.kill("SIGTERM");
      assert.equal(await w2.exited, EXIT.DRAINED);
    } finally {
      rec.remove();
    }
  });
});
