import { strict as assert } from "node:assert";
import { EXIT } from "../../worker/contract";
import { runWorker } from "../../worker/run";
import { forgetInProcessHandler, inProcessWorkerEnv, recordFile } from "../support/worker-process";
import { eventually, sleep, TestSqs } from "../support/sqs";

describe("recycling (the seeds' cron restart, done safely)", function () {
  this.timeout(30_000);
  let sqs: TestSqs;
  let n = 0;
  before(async () => (sqs = await TestSqs.start()));
  after(async () => {
    await sqs.stop();
    forgetInProcessHandler();
  });

  async function run(extra: Record<string, string>, messages: number, rec = recordFile()) {
    const q = await sqs.queuePair(`recycle-${n++}`);
    await sqs.send(q.url, Array.from({ length: messages }, (_, i) => `r${i}`));
    const code = await runWorker({
      env: inProcessWorkerEnv(sqs, q.url, rec, extra.HANDLER_MS ?? "0", { MAX_WORKERS: "2", LOG_LEVEL: "error", ...extra }),
      rssCheckMs: 50,
    });
    const lines = rec.lines();
    rec.remove();
    return { code, lines, q };
  }

  it("after WORKER_MAX_MESSAGES: drains, exits with the recycle code, leaves the rest in the queue", async () => {
    const { code, lines, q } = await run({ WORKER_MAX_MESSAGES: "5", HANDLER_MS: "20" }, 30);
    assert.equal(code, EXIT.RECYCLED);
    const done = lines.filter((l) => l.startsWith("done")).length;
    const started = lines.filter((l) => l.startsWith("start")).length;
    assert.ok(done >= 5 && done <= 6, `finished ${done}: the limit, plus what was already in flight`);
    assert.equal(started, done, "everything it started, it finished");
    assert.ok(await eventually(async () => (await sqs.depth(q.url)).inFlight === 0, 3000));
    assert.equal((await sqs.depth(q.url)).visible, 30 - done);
  });

  it("after WORKER_MAX_LIFETIME seconds", async () => {
    const t0 = Date.now();
    const { code } = await run({ WORKER_MAX_LIFETIME: "1", HANDLER_MS: "50" }, 200);
    assert.equal(code, EXIT.RECYCLED);
    assert.ok(Date.now() - t0 < 5000);
  });

  it("above WORKER_MAX_RSS_MB", async () => {
    const { code, lines } = await run({ WORKER_MAX_RSS_MB: "1", HANDLER_MS: "10" }, 50);
    assert.equal(code, EXIT.RECYCLED);
    assert.equal(lines.filter((l) => l.startsWith("start")).length, lines.filter((l) => l.startsWith("done")).length);
  });

  it("never without a limit: a plain run only stops when told to", async () => {
    const q = await sqs.queuePair(`norecycle-${n++}`);
    const rec = recordFile();
    await sqs.send(q.url, ["a", "b", "c"]);
    const running = runWorker({ env: inProcessWorkerEnv(sqs, q.url, rec, "0", { LOG_LEVEL: "error" }) });
    try {
      assert.ok(await eventually(() => rec.lines().filter((l) => l.startsWith("done")).length === 3));
      await sleep(1500);
      assert.equal(rec.lines().length, 6, "still running, nothing more to do");
    } finally {
      process.emit("SIGTERM", "SIGTERM");
      assert.equal(await running, EXIT.DRAINED);
      rec.remove();
    }
  });
});
