import { strict as assert } from "node:assert";
import { SetInstanceHealthCommandInput } from "@aws-sdk/client-auto-scaling";
import { EXIT, METRICS_NAMESPACE, METRIC_DIMENSION, METRIC_WORKER_FAILURE } from "../../../worker/contract";
import { ReportFailureOptions, runReportFailure } from "../../../worker/env/command";
import { FAKE_REGION, FakeAws, FakeImds, awsError } from "../../support/fake-aws";
import { captureLog, virtualClock } from "./harness";

const INSTANCE = "i-0abc1234def567890";

/** What systemd hands kiln-worker-failed.service, plus instance.env and worker.env. */
function failedUnitEnv(imds: FakeImds, monitor: Record<string, string>): Record<string, string> {
  return {
    AWS_REGION: FAKE_REGION,
    KILN_SSM_PREFIX: "/kiln/prod/worker/",
    KILN_STACK: "prod",
    AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
    MONITOR_UNIT: "kiln-worker.service",
    MONITOR_INVOCATION_ID: "0123456789abcdef0123456789abcdef",
    ...monitor,
  };
}

const CRASH_LOOP = { MONITOR_SERVICE_RESULT: "start-limit-hit", MONITOR_EXIT_CODE: "exited", MONITOR_EXIT_STATUS: String(EXIT.CRASHED) };
const CONFIG_ERROR = { MONITOR_SERVICE_RESULT: "exit-code", MONITOR_EXIT_CODE: "exited", MONITOR_EXIT_STATUS: String(EXIT.CONFIG_ERROR) };

describe("kiln-worker report-failure (IMDSv2 stand-in, fake Auto Scaling and CloudWatch)", () => {
  let fake: FakeAws;
  let imds: FakeImds;
  let logs: ReturnType<typeof captureLog>;

  beforeEach(async () => {
    fake = new FakeAws();
    imds = await FakeImds.start({ instanceId: INSTANCE });
    logs = captureLog();
  });
  afterEach(async () => {
    fake.restore();
    await imds.stop();
  });

  const report = (monitor: Record<string, string>, o: Partial<ReportFailureOptions> = {}) =>
    runReportFailure({
      env: failedUnitEnv(imds, monitor),
      cloudwatch: fake.cloudwatch,
      autoscaling: fake.autoscaling,
      log: logs.log,
      clock: virtualClock(),
      ...o,
    });
  const healthCalls = () => fake.inputs<SetInstanceHealthCommandInput>("SetInstanceHealth");

  it("after a crash loop: counts a WorkerFailure and marks this instance unhealthy, grace period or not", async () => {
    assert.equal(await report(CRASH_LOOP), EXIT.DRAINED);

    assert.deepEqual(
      fake.metrics.map((m) => [m.Namespace, m.MetricName, m.Dimensions, m.Value, m.Unit]),
      [[METRICS_NAMESPACE, METRIC_WORKER_FAILURE, [{ Name: METRIC_DIMENSION, Value: "prod" }], 1, "Count"]],
    );
    assert.deepEqual(healthCalls(), [{ InstanceId: INSTANCE, HealthStatus: "Unhealthy", ShouldRespectGracePeriod: false }]);
    assert.equal(fake.instanceHealth.get(INSTANCE), "Unhealthy");
    assert.deepEqual(imds.requests, ["PUT /latest/api/token 200", "GET /latest/meta-data/instance-id 200"]);
    const [why] = logs.at("error");
    assert.match(why.msg, /^systemd gave up on kiln-worker\.service \(start-limit-hit, exited 1\): marking this instance unhealthy/);
  });

  it("after a configuration error: reports only, since a new instance would fail the same way", async () => {
    assert.equal(await report(CONFIG_ERROR), EXIT.DRAINED);
    assert.equal(fake.metrics.length, 1);
    assert.deepEqual(healthCalls(), []);
    assert.deepEqual(imds.requests, [], "not even the instance id is needed");
    assert.match(logs.at("error")[0].msg, /exited 78\): reporting only/);
  });

  it("after kiln-worker-env.service's config error too (it shares the OnFailure unit)", async () => {
    assert.equal(await report({ ...CONFIG_ERROR, MONITOR_UNIT: "kiln-worker-env.service" }), EXIT.DRAINED);
    assert.deepEqual(healthCalls(), []);
    assert.match(logs.at("error")[0].msg, /gave up on kiln-worker-env\.service/);
  });

  it("replaces the instance when the worker was killed by a signal, whatever the number", async () => {
    // A signal's name, not a number: 78 here would not be a config error.
    assert.equal(await report({ MONITOR_SERVICE_RESULT: "oom-kill", MONITOR_EXIT_CODE: "killed", MONITOR_EXIT_STATUS: "KILL" }), EXIT.DRAINED);
    assert.equal(healthCalls().length, 1);
  });

  it("names the stack from the SSM prefix when worker.env was never written", async () => {
    const env = failedUnitEnv(imds, CRASH_LOOP);
    delete env.KILN_STACK;
    env.KILN_SSM_PREFIX = "/kiln/staging-2/worker/";
    assert.equal(await report(CRASH_LOOP, { env }), EXIT.DRAINED);
    assert.deepEqual(fake.metrics[0].Dimensions, [{ Name: METRIC_DIMENSION, Value: "staging-2" }]);
  });

  it("retries a throttled PutMetricData and an IMDS hiccup", async () => {
    fake.failNext("PutMetricData", awsError("cloudwatch", "Throttling", "Rate exceeded"), 2);
    imds.failNext(1);
    assert.equal(await report(CRASH_LOOP), EXIT.DRAINED);
    assert.equal(fake.metrics.length, 1);
    assert.equal(fake.instanceHealth.get(INSTANCE), "Unhealthy");
    assert.equal(logs.at("warn").length, 3);
  });

  it("still marks the instance unhealthy when the metric cannot be published, and exits EXIT.CRASHED", async () => {
    fake.failNext("PutMetricData", awsError("cloudwatch", "InternalServiceError", "oops", 500), Infinity);
    assert.equal(await report(CRASH_LOOP), EXIT.CRASHED);
    assert.equal(fake.instanceHealth.get(INSTANCE), "Unhealthy");
    assert.match(logs.at("error")[1].msg, /could not publish Kiln\/Worker WorkerFailure: InternalServiceError: oops/);
  });

  it("exits EXIT.CRASHED naming SetInstanceHealth when Auto Scaling refuses", async () => {
    fake.failNext("SetInstanceHealth", awsError("autoscaling", "ValidationError", "Instance Id not found"), Infinity);
    assert.equal(await report(CRASH_LOOP), EXIT.CRASHED);
    assert.equal(healthCalls().length, 1, "a ValidationError is not retried");
    assert.match(logs.at("error")[1].msg, /SetInstanceHealth failed: ValidationError: Instance Id not found/);
  });

  it("exits EXIT.CRASHED naming IMDS when the instance id cannot be read", async () => {
    imds.metadata.delete("instance-id");
    assert.equal(await report(CRASH_LOOP, { retry: { deadlineMs: 5_000 } }), EXIT.CRASHED);
    assert.deepEqual(healthCalls(), []);
    assert.match(logs.at("error")[1].msg, /IMDS instance-id failed: Error: IMDS instance-id answered 404/);
  });
});
