import { strict as assert } from "node:assert";
import * as path from "node:path";
import { desiredCapacity } from "../../infra/scaling-rule";
import { LocalFleet, startLocalFleet } from "../../local/fleet";
import * as fs from "node:fs";
import { LocalOptions, UsageError } from "../../local/plan";
import { FleetResult } from "../../local/summary";
import { eventually } from "../support/sqs";
import { answers, captureIo, isAlive, quickOptions, scratch, workerLog } from "./support";

const STATUS_LINE = /^\[\s*[\d.]+ s\] backlog \d+ \| in flight \d+ \| processed \d+ \(\d+\/min\) \| DLQ \d+ \| workers \d+\/\d+.* \| ETA /m;

describe("the local fleet (npm run local), in process", function () {
  let tmp: ReturnType<typeof scratch>;
  let fleet: LocalFleet | undefined;

  beforeEach(() => {
    tmp = scratch();
    fleet = undefined;
  });

  afterEach(async () => {
    // Whatever a failed test left running goes: workers killed, SQS stopped.
    if (fleet) {
      fleet.force();
      await fleet.done;
    }
    tmp.remove();
  });

  async function start(over: Partial<LocalOptions>) {
    const io = captureIo();
    fleet = await startLocalFleet(quickOptions(tmp.dir, over), io);
    return { fleet, io };
  }

  async function assertCleanedUp(result: FleetResult) {
    assert.ok(result.workerPids.length > 0);
    assert.deepEqual(result.workerPids.filter(isAlive), [], "no worker process is left");
    assert.equal(await answers(result.endpoint), false, "the embedded SQS is stopped");
  }

  it("runs the demo to the end: every message processed, the failing ones in the DLQ, a summary", async () => {
    const { fleet, io } = await start({ messages: 60, failRate: 0.05 });
    const result = await fleet.done;

    assert.equal(result.exitCode, 0, io.text() + io.errors());
    assert.equal(result.reason, "every message handled");
    assert.equal(result.sent, 60);
    assert.equal(result.madeToFail, 3);
    assert.equal(result.processed, 57);
    assert.equal(result.dlq, 3);
    assert.ok(result.retries >= 9, `each failing message failed maxReceiveCount (3) times: ${result.retries}`);
    assert.deepEqual(result.left, { visible: 0, inFlight: 0, delayed: 0 });
    assert.ok(result.peakWorkers >= 1 && result.peakWorkers <= 2, "the dev stack's kiln:maxSize is 2");

    const out = io.text();
    assert.match(out, /kiln local: stack dev \(.*Pulumi\.dev\.yaml\), embedded SQS at http:\/\/127\.0\.0\.1:\d+/);
    assert.match(out, /summary \(stack dev\): every message handled/);
    assert.match(out, /^ {2}sent {12}60 \(3 asked to fail\)$/m);
    assert.match(out, /^ {2}processed {7}57$/m);
    assert.match(out, /^ {2}failed → DLQ {4}3 /m);
    assert.match(out, /^ {2}left in queue {3}0$/m);
    assert.equal(io.errors(), "");

    // Not a terminal: plain status lines, each naming every figure.
    assert.match(out, STATUS_LINE);
    assert.doesNotMatch(out, /\x1b\[/, "no cursor movement in plain output");

    const log = workerLog(path.join(tmp.dir, "workers.log"));
    assert.equal(log.filter((l) => l.msg === "processed").length, 57, "the workers' lines reach the log file");
    await assertCleanedUp(result);
  });

  it("grows to what the shared rule asks for, within max, and shrinks back to min once the queue is empty", async () => {
    // 150 messages at 20 per worker: the rule asks for 8, max allows 4; min keeps one.
    const scaling = { acceptableLatency: 1, avgProcessingMs: 50, minSize: 1, maxSize: 4 };
    const { fleet, io } = await start({
      ...scaling,
      messages: 150,
      failRate: 0,
      concurrency: 2,
      scaleOutCooldown: 0,
      scaleInCooldown: 0.5,
      keepRunning: true,
      env: { DEMO_AVG_MS: "150" },
    });
    assert.equal(fleet.plan.scaling.target, 20);

    assert.ok(await eventually(() => fleet.status().running === 4, 15_000), `grows to 4:\n${io.text()}`);
    assert.ok(
      await eventually(() => fleet.status().processed === 150 && fleet.status().desired === 1 && fleet.status().running === 1, 30_000),
      `shrinks to 1:\n${io.text()}`,
    );
    fleet.stop("test over");
    const result = await fleet.done;

    assert.equal(result.exitCode, 0);
    assert.equal(result.peakWorkers, 4);
    assert.ok(result.scaling.length >= 2);
    for (const e of result.scaling) {
      assert.equal(e.to, desiredCapacity(e.visible, 20, 1, 4), `every change is the rule's answer: ${JSON.stringify(e)}`);
    }
    assert.equal(Math.max(...result.scaling.map((e) => e.to)), 4);
    assert.equal(result.scaling[result.scaling.length - 1].to, 1);
    assert.match(io.text(), /scale out: [123] → 4 workers/);
    await assertCleanedUp(result);
  });

  it("drains on stop (Ctrl-C): workers exit 0 and no message is lost or left in flight", async () => {
    const { fleet, io } = await start({ messages: 120, failRate: 0, keepRunning: true, env: { DEMO_AVG_MS: "300" } });
    assert.ok(await eventually(() => fleet.status().processed >= 5 && fleet.status().queue.inFlight > 0, 15_000), io.text());
    fleet.stop("Ctrl-C");
    const result = await fleet.done;

    assert.equal(result.exitCode, 0, io.text() + io.errors());
    assert.equal(result.reason, "Ctrl-C");
    assert.equal(result.left.inFlight, 0, "in-flight messages were finished or handed back");
    assert.equal(result.processed + result.left.visible + result.dlq, 120, "every message is processed or still in the queue");
    assert.ok(result.left.visible > 0, "stopped before the end");

    const log = workerLog(path.join(tmp.dir, "workers.log"));
    const stopped = log.filter((l) => l.msg === "stopped");
    assert.deepEqual(
      stopped.map((l) => l.exitCode),
      result.workerPids.map(() => 0),
      "every worker drained and exited 0",
    );
    await assertCleanedUp(result);
  });

  it("stops on a worker configuration error instead of restarting into it", async () => {
    const { fleet, io } = await start({ messages: 30, env: { SQS_MAX_MESSAGES: "50" } });
    const result = await fleet.done;

    assert.equal(result.exitCode, 78);
    assert.match(result.error ?? "", /configuration error \(exit 78\)/);
    assert.match(io.errors(), /SQS_MAX_MESSAGES must be a whole number from 1 to 10/);
    assert.equal(io.errors().trim().split("\n").length, 2, `one reason, one worker line: ${io.errors()}`);
    assert.equal(result.restarts, 0);
    assert.ok(result.workerPids.length <= 2, "no restart loop");
    await assertCleanedUp(result);
  });

  it("refuses a handler, command or app that is not there before starting anything", async () => {
    const cases: [Partial<LocalOptions>, RegExp][] = [
      [{ handler: path.join(tmp.dir, "missing-handler.js") }, /^--handler: .*missing-handler\.js does not exist$/],
      [{ command: "no-such-program --flag" }, /^--command: no-such-program is not on PATH/],
      [{ app: "./missing-app.sh" }, /^--app: \.\/missing-app\.sh does not exist or is not executable/],
    ];
    for (const [over, message] of cases) {
      await assert.rejects(start({ messages: 10, ...over }), (e: Error) => e instanceof UsageError && message.test(e.message), JSON.stringify(over));
    }
    assert.equal(fs.existsSync(path.join(tmp.dir, "workers.log")), false, "no worker log: nothing started");
  });

  it("runs a long-lived app (--app) in any language: the seeds' Python example, fed the demo messages", async () => {
    const { fleet, io } = await start({
      messages: 30,
      failRate: 0.1,
      app: "python3 worker/examples/file-processor/app.py",
      appHealthPath: "/health",
      env: { WORK_MS: "10", IMPORT_SECONDS: "0" },
    });
    const result = await fleet.done;
    assert.equal(result.exitCode, 0, io.text() + io.errors());
    assert.deepEqual([result.processed, result.dlq], [27, 3]);
    assert.match(io.text(), /app python3 worker\/examples\/file-processor\/app\.py \(its output goes to the log file\)/);
    const log = workerLog(path.join(tmp.dir, "workers.log")) as { msg?: string; worker?: string }[];
    assert.ok(log.some((l) => l.msg === "app process ready" && l.worker === "w1"), "each line tagged with its worker");
    await assertCleanedUp(result);
  });

  it("restarts a worker that crashed, as systemd would", async () => {
    const { fleet, io } = await start({
      messages: 40,
      maxSize: 1,
      handler: path.join(__dirname, "handlers", "crash-once.js"),
      env: { CRASH_ONCE_MARKER: path.join(tmp.dir, "crashed") },
    });
    const result = await fleet.done;

    assert.equal(result.exitCode, 0, io.text() + io.errors());
    assert.equal(result.processed, 40);
    assert.match(io.text(), /w1 stopped unexpectedly \(exit 1\)(: [^\n]*)?; restarting in 0\.5 s$/m, "one line, not the error's stack");
    assert.equal(result.restarts, 1);
    await assertCleanedUp(result);
  });

  it("starts a worker that recycled itself (exit 75) again at once", async () => {
    // Command mode recycles the worker process itself; handler threads and apps recycle in place.
    const { fleet, io } = await start({ messages: 40, maxSize: 1, command: "cat > /dev/null", env: { WORKER_MAX_MESSAGES: "15" } });
    const result = await fleet.done;

    assert.equal(result.exitCode, 0, io.text() + io.errors());
    assert.equal(result.processed, 40);
    assert.match(io.text(), /w1 recycled \(handled 15 messages \(WORKER_MAX_MESSAGES\)\): started again/);
    assert.ok(result.restarts >= 2, `two recycles at least: ${result.restarts}`);
    await assertCleanedUp(result);
  });
});
