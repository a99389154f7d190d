import { strict as assert } from "node:assert";
import {
  CompleteLifecycleActionCommand,
  CompleteLifecycleActionCommandInput,
  RecordLifecycleActionHeartbeatCommand,
} from "@aws-sdk/client-auto-scaling";
import { DRAIN_LIFECYCLE_HOOK, EXIT, METRIC_PROCESSED, METRICS_NAMESPACE } from "../../worker/contract";
import { runWorker } from "../../worker/run";
import { FakeAws, FakeImds } from "../support/fake-aws";
import { eventually, TestSqs } from "../support/sqs";
import { forgetInProcessHandler, inProcessWorkerEnv, recordFile } from "../support/worker-process";

describe("scale-in: the drain an Auto Scaling lifecycle hook waits for", function () {
  this.timeout(30_000);
  let sqs: TestSqs;
  let imds: FakeImds;
  let aws: FakeAws;
  let completed: CompleteLifecycleActionCommandInput[];
  let heartbeats: number;
  let n = 0;

  before(async () => (sqs = await TestSqs.start()));
  after(async () => {
    await sqs.stop();
    forgetInProcessHandler();
  });
  beforeEach(async () => {
    imds = await FakeImds.start({ instanceId: "i-0aaaabbbbccccdddd" });
    aws = new FakeAws();
    completed = [];
    heartbeats = 0;
    aws.handle("autoscaling", CompleteLifecycleActionCommand, (input) => (completed.push(input), {}));
    aws.handle("autoscaling", RecordLifecycleActionHeartbeatCommand, () => (heartbeats++, {}));
  });
  afterEach(async () => {
    aws.restore();
    await imds.stop();
  });

  async function start(extra: Record<string, string> = {}, handlerMs = "1500") {
    const q = await sqs.queuePair(`scalein-${n++}`);
    const rec = recordFile();
    await sqs.send(q.url, Array.from({ length: 20 }, (_, i) => `s${i}`));
    const running = runWorker({
      env: inProcessWorkerEnv(sqs, q.url, rec, handlerMs, {
        AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
        MAX_WORKERS: "3",
        LOG_LEVEL: "fatal",
        KILN_STACK: "prod",
        KILN_ASG_NAME: "kiln-prod-workers",
        KILN_LIFECYCLE_HOOK: DRAIN_LIFECYCLE_HOOK,
        KILN_METRICS: "on",
        ...extra,
      }),
      scaleInCheckMs: 100,
      heartbeatMs: 200,
      clients: { autoscaling: aws.autoscaling, cloudwatch: aws.cloudwatch },
    });
    return { q, rec, running };
  }

  it("drains when IMDS says Terminated, then completes the lifecycle action and exits 79", async () => {
    const { q, rec, running } = await start();
    try {
      assert.ok(await eventually(() => rec.lines().filter((l) => l.startsWith("start")).length === 3));
      imds.metadata.set("autoscaling/target-lifecycle-state", "Terminated");
      assert.equal(await running, EXIT.SCALED_IN);
    } finally {
      process.emit("SIGTERM", "SIGTERM");
      await running;
    }
    const started = rec.lines().filter((l) => l.startsWith("start")).length;
    const done = rec.lines().filter((l) => l.startsWith("done")).length;
    assert.equal(done, started, "every message it started, it finished before letting the instance go");
    assert.ok(heartbeats >= 1, "the action was kept alive while draining");
    assert.deepEqual(completed, [
      {
        AutoScalingGroupName: "kiln-prod-workers",
        LifecycleHookName: DRAIN_LIFECYCLE_HOOK,
        InstanceId: "i-0aaaabbbbccccdddd",
        LifecycleActionResult: "CONTINUE",
      },
    ]);
    const last = aws.calls.filter((c) => c.service === "autoscaling").at(-1);
    assert.equal(last?.operation, "CompleteLifecycleAction", "completion comes last, after the drain");
    assert.ok(await eventually(async () => (await sqs.depth(q.url)).inFlight === 0, 3000), "nothing left hidden");
    assert.equal((await sqs.depth(q.url)).visible, 20 - done);
    assert.ok(imds.requests.some((r) => r.startsWith("PUT /latest/api/token 200")), "IMDSv2: a session token first");
    // The drain flushed the worker's metrics: what it processed reached CloudWatch.
    const processed = aws.metrics.filter((m) => m.MetricName === METRIC_PROCESSED && m.Namespace === METRICS_NAMESPACE);
    assert.equal(processed.reduce((s, m) => s + (m.Value ?? 0), 0), done);
    assert.deepEqual(processed[0].Dimensions, [{ Name: "Stack", Value: "prod" }]);
    rec.remove();
  });

  it("gives a scale-in its own budget (WORKER_SCALE_IN_TIMEOUT), not SIGTERM's: a message longer than the drain timeout finishes", async () => {
    const extra = { WORKER_DRAIN_TIMEOUT: "1", PROCESSING_TIMEOUT: "10", WORKER_SCALE_IN_TIMEOUT: "10" };
    const { q, rec, running } = await start(extra, "2500");
    assert.ok(await eventually(() => rec.lines().filter((l) => l.startsWith("start")).length === 3));
    imds.metadata.set("autoscaling/target-lifecycle-state", "Terminated");
    assert.equal(await running, EXIT.SCALED_IN);
    const lines = rec.lines();
    assert.equal(lines.filter((l) => l.startsWith("done")).length, 3, "all three finished, 1.5 s past the 1 s drain timeout");
    assert.ok(heartbeats >= 5, `the action was kept alive meanwhile (${heartbeats} heartbeats at 200 ms)`);
    assert.equal(completed.length, 1);
    assert.ok(await eventually(async () => (await sqs.depth(q.url)).inFlight === 0, 3000));
    assert.equal((await sqs.depth(q.url)).visible, 17);
    rec.remove();
  });

  it("still drains and exits when completing the action fails; the hook's timeout lets the instance go", async () => {
    aws.failNext("CompleteLifecycleAction", Object.assign(new Error("Rate exceeded"), { name: "Throttling" }));
    const { rec, running } = await start();
    assert.ok(await eventually(() => rec.lines().filter((l) => l.startsWith("start")).length >= 1));
    imds.metadata.set("autoscaling/target-lifecycle-state", "Terminated");
    assert.equal(await running, EXIT.SCALED_IN);
    assert.equal(rec.lines().filter((l) => l.startsWith("done")).length, rec.lines().filter((l) => l.startsWith("start")).length);
    rec.remove();
  });

  it("keeps consuming while IMDS is briefly unavailable, and on an instance that stays in service", async () => {
    imds.failNext(3);
    const { rec, running } = await start({}, "0");
    try {
      assert.ok(await eventually(() => rec.lines().filter((l) => l.startsWith("done")).length === 20));
      assert.deepEqual(completed, []);
    } finally {
      process.emit("SIGTERM", "SIGTERM");
      assert.equal(await running, EXIT.DRAINED);
    }
    assert.deepEqual(completed, [], "a SIGTERM drain does not complete a lifecycle action");
    rec.remove();
  });
});
