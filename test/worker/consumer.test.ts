import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Consumer, ConsumerOptions, Processor } from "../../worker/consumer";
import { CommandRunner } from "../../worker/command-runner";
import { createLogger } from "../../worker/log";

const commandProcessor = (command: string) =>
  new CommandRunner({ command, maxWorkers: 4, killGraceMs: 5_000, env: process.env, log: createLogger("silent") }).process;
import { eventually, sleep, TestSqs } from "../support/sqs";

describe("the consumer (real SQS: fauxqs on 127.0.0.1)", function () {
  this.timeout(60_000);
  let sqs: TestSqs;
  let n = 0;
  const consumers: Consumer[] = [];

  before(async () => (sqs = await TestSqs.start()));
  after(async () => sqs.stop());
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.drain(0)));
  });

  function consumer(queueUrl: string, process: Processor, o: Partial<ConsumerOptions> = {}): Consumer {
    const c = new Consumer({
      sqs: sqs.client,
      queueUrl,
      concurrency: 4,
      maxMessages: 10,
      waitTimeSeconds: 1,
      visibilityTimeout: 30,
      processingTimeoutMs: 30_000,
      retryDelaySeconds: 0,
      process,
      ...o,
    });
    consumers.push(c);
    c.on("error", (e, op) => console.error(`consumer ${op}: ${e.message}`));
    return c;
  }

  const bodies = (count: number) => Array.from({ length: count }, (_, i) => `m${i}`);

  it("processes every message once and deletes it, keeping exactly `concurrency` handlers busy", async () => {
    const q = await sqs.queuePair(`all-${n++}`);
    await sqs.send(q.url, bodies(60));
    let running = 0;
    let peak = 0;
    const seen: string[] = [];
    const c = consumer(q.url, async (m) => {
      peak = Math.max(peak, ++running);
      await sleep(20);
      seen.push(m.Body!);
      running--;
    }, { concurrency: 5 });
    c.start();
    assert.ok(await eventually(() => seen.length === 60));
    assert.equal(new Set(seen).size, 60);
    assert.equal(peak, 5);
    assert.ok(await eventually(async () => (await sqs.depth(q.url)).inFlight === 0), "every message deleted");
    assert.deepEqual(await sqs.depth(q.url), { visible: 0, inFlight: 0, delayed: 0 });
  });

  it("refills a slot the moment it frees, never waiting for the slowest message of a batch", async () => {
    const q = await sqs.queuePair(`refill-${n++}`);
    await sqs.send(q.url, ["slow", ...bodies(30)]);
    const done: string[] = [];
    const c = consumer(q.url, async (m) => {
      await sleep(m.Body === "slow" ? 3000 : 20);
      done.push(m.Body!);
    }, { concurrency: 3 });
    c.start();
    assert.ok(await eventually(() => done.length === 31));
    assert.equal(done[done.length - 1], "slow", "30 fast messages went through two slots while one was stuck");
  });

  /** Messages received and not yet settled, at most, and the receives that brought them. */
  function holding(c: Consumer) {
    const seen = { outstanding: 0, peak: 0, received: 0, batches: [] as number[] };
    c.on("received", (k) => {
      seen.peak = Math.max(seen.peak, (seen.outstanding += k));
      seen.received += k;
      seen.batches.push(k);
    });
    const settle = () => seen.outstanding--;
    c.on("processed", settle).on("failed", settle).on("released", settle);
    return seen;
  }

  it("holds no more messages than it has free slots when its handlers are slow", async () => {
    const q = await sqs.queuePair(`hold-${n++}`);
    await sqs.send(q.url, bodies(15));
    // 3 slots of 200 ms finish 15 a second: less than one message in a read-ahead's 10 ms.
    const c = consumer(q.url, async () => sleep(200), { concurrency: 3, maxMessages: 10 });
    const seen = holding(c);
    c.start();
    assert.ok(await eventually(async () => (await sqs.depth(q.url)).visible === 0 && c.inFlight === 0));
    assert.ok(seen.peak <= 3, `held ${seen.peak} messages with 3 slots`);
  });

  it("reads ahead when its handlers are fast: whole batches, never more than one set of slots ahead", async () => {
    const q = await sqs.queuePair(`ahead-${n++}`);
    await sqs.send(q.url, bodies(1000));
    // Slots that free one at a time, a few milliseconds apart, as real handlers do.
    const c = consumer(q.url, async () => sleep(Math.random() * 5), { concurrency: 10, maxMessages: 10 });
    const seen = holding(c);
    c.start();
    assert.ok(await eventually(async () => seen.received === 1000 && c.inFlight === 0 && c.waiting === 0));
    assert.ok(seen.peak <= 20, `held ${seen.peak} messages with 10 slots`);
    // Without read-ahead each freed slot asks on its own: about 3 messages a receive here. The
    // first receives come before a finish rate is known; the last, from an emptying queue.
    const steady = seen.batches.slice(Math.floor(seen.batches.length / 4), -5);
    const mean = steady.reduce((a, k) => a + k, 0) / steady.length;
    assert.ok(mean >= 7, `${mean.toFixed(1)} messages a receive`);
  });

  it("hands what it read ahead back to the queue the moment it stops, hidden no longer", async () => {
    const q = await sqs.queuePair(`ahead-stop-${n++}`);
    await sqs.send(q.url, bodies(800));
    let done = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    // Fast for 600 messages (long enough for the finish rate that sizes read-ahead to be measured,
    // even on a loaded machine), then both slots hang.
    const c = consumer(q.url, async () => (++done > 600 ? gate : undefined), { concurrency: 2, maxMessages: 10 });
    c.start();
    try {
      assert.ok(await eventually(() => done >= 602 && c.inFlight === 2 && c.waiting > 0), "both slots hang with messages read ahead");
      const waiting = c.waiting;
      let released = 0;
      c.on("released", () => released++);
      c.stop();
      assert.equal(c.waiting, 0);
      // The two hung messages stay hidden; everything else not processed is visible again.
      assert.ok(await eventually(async () => (await sqs.depth(q.url)).inFlight === 2), "only the two in the slots stay hidden");
      assert.equal(released, waiting);
    } finally {
      open();
    }
    await c.drain(5_000);
    assert.deepEqual(await sqs.depth(q.url), { visible: 800 - 602, inFlight: 0, delayed: 0 });
  });

  it("leaves a failed message to come back, and a poison one reaches the DLQ after exactly maxReceiveCount receives", async () => {
    const q = await sqs.queuePair(`poison-${n++}`, { maxReceiveCount: 3 });
    await sqs.send(q.url, ["poison", "good"]);
    const receives: string[] = [];
    const c = consumer(q.url, async (m) => {
      receives.push(`${m.Body}#${m.Attributes?.ApproximateReceiveCount}`);
      if (m.Body === "poison") throw new Error("cannot process");
    });
    c.start();
    assert.ok(await eventually(async () => (await sqs.depth(q.dlqUrl)).visible === 1, 20_000));
    const [dead] = await sqs.receiveAll(q.dlqUrl);
    assert.equal(dead.Body, "poison");
    assert.deepEqual(receives.filter((r) => r.startsWith("poison")).sort(), ["poison#1", "poison#2", "poison#3"]);
    assert.deepEqual(receives.filter((r) => r.startsWith("good")), ["good#1"]);
  });

  it("fails a malformed message, never the process", async () => {
    const q = await sqs.queuePair(`malformed-${n++}`, { maxReceiveCount: 1 });
    await sqs.send(q.url, ["{not json", '{"ok":1}']);
    const ok: unknown[] = [];
    const c = consumer(q.url, async (m) => {
      ok.push(JSON.parse(m.Body!));
    });
    const failed: string[] = [];
    c.on("failed", (m, e) => failed.push(`${m.Body}: ${e.name}`));
    c.start();
    assert.ok(await eventually(() => ok.length === 1 && failed.length === 1));
    assert.deepEqual(failed, ["{not json: SyntaxError"]);
  });

  it("delays a retry more on each receive", async () => {
    const q = await sqs.queuePair(`backoff-${n++}`, { maxReceiveCount: 5 });
    await sqs.send(q.url, ["flaky"]);
    const delays: number[] = [];
    const c = consumer(q.url, async () => {
      throw new Error("transient");
    }, { retryDelaySeconds: 1 });
    c.on("failed", (_m, _e, s) => delays.push(s));
    c.start();
    assert.ok(await eventually(() => delays.length >= 3, 15_000));
    assert.deepEqual(delays.slice(0, 3), [1, 2, 4]);
  });

  it("keeps extending visibility while a handler runs past the visibility timeout", async () => {
    const q = await sqs.queuePair(`extend-${n++}`, { visibilityTimeout: 2 });
    await sqs.send(q.url, ["long"]);
    let calls = 0;
    const c = consumer(q.url, async () => {
      calls++;
      await sleep(5000);
    }, { visibilityTimeout: 2, concurrency: 2 });
    // A second consumer on the same queue would get the message if it ever became visible.
    const rival = consumer(q.url, async () => void calls++, { visibilityTimeout: 2 });
    c.start();
    await eventually(() => calls === 1);
    rival.start();
    assert.ok(await eventually(async () => (await sqs.depth(q.url)).inFlight === 0 && c.inFlight === 0, 15_000));
    assert.equal(calls, 1, "processed once, never redelivered");
  });

  it("aborts a handler at the processing timeout, and gives its slot to the next message only once it has stopped", async () => {
    const q = await sqs.queuePair(`hung-${n++}`, { maxReceiveCount: 1 });
    await sqs.send(q.url, ["hang", "next"]);
    const events: string[] = [];
    const c = consumer(q.url, async (m, signal) => {
      events.push(`start ${m.Body}`);
      if (m.Body === "hang") {
        signal.addEventListener("abort", () => events.push("abort"));
        // Ignores its signal for a while: the slot must stay its own until it really stops.
        await sleep(1_500);
        events.push("hang stopped");
        throw new Error("gave up");
      }
    }, { concurrency: 1, processingTimeoutMs: 500 });
    const failures: string[] = [];
    c.on("failed", (m, e) => failures.push(`${m.Body} ${e.name}`));
    c.start();
    assert.ok(await eventually(() => events.includes("start next")));
    assert.deepEqual(events, ["start hang", "abort", "hang stopped", "start next"]);
    assert.deepEqual(failures, ["hang ProcessingTimeout"], "failed for its timeout, not for what it threw afterwards");
  });

  it("kills a hung command's whole process group at the processing timeout", async () => {
    const q = await sqs.queuePair(`hungcmd-${n++}`, { maxReceiveCount: 1 });
    await sqs.send(q.url, ["x"]);
    const marker = `sleep 3000.${process.pid}${n}`;
    // The shell starts a child of its own that outlives a plain kill of the shell.
    const c = consumer(q.url, commandProcessor(`${marker} & ${marker}`), {
      processingTimeoutMs: 700,
    });
    const failures: string[] = [];
    c.on("failed", (_m, e) => failures.push(e.name));
    c.start();
    assert.ok(await eventually(() => failures.length === 1));
    assert.deepEqual(failures, ["ProcessingTimeout"]);
    const alive = () => {
      try {
        return execFileSync("pgrep", ["-f", marker], { encoding: "utf8" }).trim();
      } catch {
        return "";
      }
    };
    assert.ok(await eventually(() => alive() === "", 8000), `processes left: ${alive()}`);
  });

  it("runs a command per message with the body on stdin and the message id and receive count in its env", async () => {
    const q = await sqs.queuePair(`cmd-${n++}`, { maxReceiveCount: 1 });
    await sqs.send(q.url, ["hello world", "fail-me"]);
    const file = path.join(os.tmpdir(), `kiln-cmd-${process.pid}-${n}`);
    const c = consumer(
      q.url,
      commandProcessor(`read body; [ "$body" != fail-me ] || exit 3; echo "$body|$KILN_MESSAGE_ID|$KILN_RECEIVE_COUNT" >> ${file}`),
    );
    const outcomes: string[] = [];
    const ids: string[] = [];
    c.on("processed", (m) => (ids.push(m.MessageId!), outcomes.push(`ok ${m.Body}`)));
    c.on("failed", (m, e) => outcomes.push(`failed ${m.Body}: ${e.message}`));
    c.start();
    assert.ok(await eventually(() => outcomes.length === 2));
    const out = fs.readFileSync(file, "utf8").trim().split("\n");
    fs.rmSync(file);
    assert.deepEqual(outcomes.sort(), ["failed fail-me: command exited with 3", "ok hello world"]);
    assert.deepEqual(out, [`hello world|${ids[0]}|1`]);
  });

  it("drains: stops receiving at once, finishes what is in flight, deletes it, and releases nothing", async () => {
    const q = await sqs.queuePair(`drain-${n++}`);
    await sqs.send(q.url, bodies(4));
    const done: string[] = [];
    const c = consumer(q.url, async (m) => {
      await sleep(800);
      done.push(m.Body!);
    }, { concurrency: 4, waitTimeSeconds: 20 });
    c.start();
    await eventually(() => c.inFlight === 4);
    await sqs.send(q.url, ["late"]);
    const t0 = Date.now();
    const { released } = await c.drain(10_000);
    assert.ok(Date.now() - t0 < 5000, "did not wait out a 20 s long poll");
    assert.equal(released, 0);
    assert.deepEqual(done.sort(), ["m0", "m1", "m2", "m3"]);
    assert.ok(await eventually(async () => (await sqs.depth(q.url)).inFlight === 0, 5000));
    const left = await sqs.receiveAll(q.url);
    assert.deepEqual(left.map((m) => m.Body), ["late"], "only the message sent during the drain remains, never received");
  });

  it("releases what outlives the drain timeout straight back to the queue", async () => {
    const q = await sqs.queuePair(`release-${n++}`);
    await sqs.send(q.url, ["forever"]);
    const c = consumer(q.url, (_m, signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))));
    c.start();
    await eventually(() => c.inFlight === 1);
    const { released } = await c.drain(300);
    assert.equal(released, 1);
    // Visible again once the cancelled long poll (1 s) is over, not after the 30 s visibility timeout.
    let back: string[] = [];
    assert.ok(await eventually(async () => (back = (await sqs.receiveAll(q.url)).map((m) => m.Body!)).length > 0, 3000));
    assert.deepEqual(back, ["forever"]);
  });
});
