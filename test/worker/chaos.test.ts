import { strict as assert } from "node:assert";
import { eventually, sleep, TestSqs } from "../support/sqs";
import { ensureBundle, RECORD_HANDLER, recordFile, startWorker, WorkerProcess } from "../support/worker-process";

/**
 * The loss-free promise under the worst a fleet sees: workers of the shipped bundle SIGKILLed at
 * random moments (OOM killer, instance loss) and replaced, while thousands of messages go through.
 */
describe("no message lost when workers are SIGKILLed at random", function () {
  this.timeout(120_000);
  let sqs: TestSqs;
  before(async () => {
    await ensureBundle();
    sqs = await TestSqs.start();
  });
  after(async () => sqs.stop());

  it("processes each of 3,000 messages at least once, and leaves the queue empty with nothing in flight", async () => {
    const total = 3000;
    const workers = 3;
    const q = await sqs.queuePair("chaos", { maxReceiveCount: 50 });
    const bodies = Array.from({ length: total }, (_, i) => `c${i}`);
    await sqs.send(q.url, bodies);
    const rec = recordFile();
    const env = {
      SQS_QUEUE_URL: q.url,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      WORKER_HANDLER: RECORD_HANDLER,
      RECORD_FILE: rec.file,
      HANDLER_MS: "20",
      MAX_WORKERS: "8",
      SQS_WAIT_TIME: "1",
      // What a killed worker held comes back within 2 s; a live one keeps extending its messages.
      SQS_VISIBILITY_TIMEOUT: "2",
      WORKER_RETRY_DELAY: "0",
      LOG_LEVEL: "error",
    };
    const fleet: WorkerProcess[] = Array.from({ length: workers }, () => startWorker("bundle", env));
    let kills = 0;
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const handled = () => new Set(rec.lines().filter((l) => l.startsWith("done")).map((l) => l.split(" ")[1])).size;
    try {
      // Kill and replace one worker every 100-300 ms until nearly everything has been handled once,
      // and at least 8 times however fast the machine is.
      while (handled() < total * 0.9 || kills < 8) {
        await sleep(100 + random() * 200);
        const i = Math.floor(random() * workers);
        fleet[i].child.kill("SIGKILL");
        await fleet[i].exited;
        kills++;
        fleet[i] = startWorker("bundle", env);
      }
      const settled = await eventually(async () => {
        const d = await sqs.depth(q.url);
        return handled() === total && d.visible === 0 && d.inFlight === 0 && d.delayed === 0;
      }, 60_000, 250);
      const d = await sqs.depth(q.url);
      assert.ok(settled, `handled ${handled()} of ${total}; queue ${JSON.stringify(d)}`);
    } finally {
      for (const w of fleet) w.child.kill("SIGTERM");
      await Promise.all(fleet.map((w) => w.exited));
    }
    const done = rec.lines().filter((l) => l.startsWith("done")).map((l) => l.split(" ")[1]);
    assert.deepEqual([...new Set(done)].sort(), [...bodies].sort(), "every message processed at least once");
    assert.equal((await sqs.receiveAll(q.dlqUrl)).length, 0, "none pushed to the DLQ by the kills");
    assert.ok(kills >= 8, `workers were killed ${kills} times`);
    console.log(`      ${kills} SIGKILLs; ${done.length - total} messages processed twice (at-least-once, as SQS promises)`);
    rec.remove();
  });
});
