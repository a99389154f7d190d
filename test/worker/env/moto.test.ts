import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AutoScalingClient, CreateAutoScalingGroupCommand, CreateLaunchConfigurationCommand, DescribeAutoScalingInstancesCommand } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient, GetMetricStatisticsCommand } from "@aws-sdk/client-cloudwatch";
import { DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { EXIT, METRICS_NAMESPACE, METRIC_DIMENSION, METRIC_WORKER_FAILURE, ssmPrefix } from "../../../worker/contract";
import { runEnvCommand, runReportFailure } from "../../../worker/env/command";
import { InstanceMetadata } from "../../../worker/lifecycle";
import { FakeImds } from "../../support/fake-aws/imds";
import { MOTO_REGION, Moto, startMoto } from "../../support/moto";
import { spawn } from "node:child_process";
import { BUNDLE, ensureBundle } from "../../support/worker-process";
import { readUnit } from "../systemd/unit-file";
import { captureLog, virtualClock } from "./harness";
import { parseSystemdEnvFile } from "./systemd-env-file";

const STACK = "prod";
const PREFIX = ssmPrefix(STACK);

/**
 * The boot-time commands against moto's SSM, KMS, Auto Scaling and CloudWatch: SecureStrings really
 * encrypted under a KMS key and decrypted on read, pages as SSM serves them, a real group whose
 * instance's health changes.
 */
describe("kiln-worker env and report-failure against moto", function () {
  this.timeout(120_000);
  let moto: Moto;
  let dir: string;
  let ssm: SSMClient;

  before(async () => {
    moto = await startMoto();
    ssm = new SSMClient(moto.client());
  });
  after(async () => {
    ssm?.destroy();
    await moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-env-moto-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const put = (name: string, value: string, type: "String" | "SecureString" = "String", keyId?: string) =>
    ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: type, KeyId: keyId, Overwrite: true }));
  const envFile = () => path.join(dir, "worker.env");
  const env = (o: { region?: string } = {}) =>
    runEnvCommand({
      env: { KILN_SSM_PREFIX: PREFIX, AWS_REGION: o.region ?? MOTO_REGION },
      ssm: new SSMClient(moto.client(o.region)),
      envFile: envFile(),
      sizingDropIn: path.join(dir, "50-sizing.conf"),
      machine: { vcpus: 2, totalMemoryBytes: 4 * 1024 ** 3 },
      log: captureLog().log,
      clock: virtualClock(),
      retry: { deadlineMs: 1_000 },
    });

  it("env: writes every parameter, SecureStrings decrypted with their KMS key, over more than one page", async () => {
    const kms = new KMSClient(moto.client());
    const key = (await kms.send(new CreateKeyCommand({ Description: "kiln prod worker" }))).KeyMetadata!.KeyId!;
    kms.destroy();
    const secret = `p@ss "w0rd" $ecret\\`;
    await put(`${PREFIX}OPENSEARCH_PASSWORD`, secret, "SecureString", key);
    const sealed = await ssm.send(new GetParameterCommand({ Name: `${PREFIX}OPENSEARCH_PASSWORD` }));
    assert.notEqual(sealed.Parameter?.Value, secret, "moto stores it encrypted");
    // 24 more: GetParametersByPath answers at most 10 a page.
    for (let i = 0; i < 24; i++) await put(`${PREFIX}APP_SETTING_${i}`, `value ${i}`);
    await put(`${PREFIX}SQS_QUEUE_URL`, "https://sqs.ap-northeast-1.amazonaws.com/123456789012/kiln-prod-work");

    assert.equal(await env(), EXIT.DRAINED);
    const written = parseSystemdEnvFile(fs.readFileSync(envFile(), "utf8"));
    assert.equal(written.get("OPENSEARCH_PASSWORD"), secret);
    assert.equal(written.get("APP_SETTING_23"), "value 23");
    assert.equal(written.get("AWS_REGION"), MOTO_REGION);
    assert.equal([...written.keys()].filter((k) => k.startsWith("APP_SETTING_")).length, 24);
    assert.equal(fs.statSync(envFile()).mode & 0o777, 0o600);
  });

  it("env: the stack's parameters in another region than user data says: a configuration error, nothing written", async () => {
    await put(`${PREFIX}SQS_QUEUE_URL`, "https://sqs.ap-northeast-1.amazonaws.com/123456789012/kiln-prod-work");
    assert.equal(await env({ region: "eu-west-1" }), EXIT.CONFIG_ERROR);
    assert.equal(fs.existsSync(envFile()), false);
  });

  describe("report-failure", () => {
    let imds: FakeImds;
    let instanceId: string;
    let autoscaling: AutoScalingClient;
    let cloudwatch: CloudWatchClient;

    beforeEach(async () => {
      autoscaling = new AutoScalingClient(moto.client());
      cloudwatch = new CloudWatchClient(moto.client());
      const ec2 = new EC2Client(moto.client());
      const image = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
      ec2.destroy();
      await autoscaling.send(new CreateLaunchConfigurationCommand({ LaunchConfigurationName: "workers", ImageId: image, InstanceType: "t3.medium" }));
      await autoscaling.send(
        new CreateAutoScalingGroupCommand({ AutoScalingGroupName: "kiln-prod-workers", LaunchConfigurationName: "workers", MinSize: 1, MaxSize: 1, DesiredCapacity: 1, AvailabilityZones: [`${MOTO_REGION}a`] }),
      );
      instanceId = (await autoscaling.send(new DescribeAutoScalingInstancesCommand({}))).AutoScalingInstances![0].InstanceId!;
      imds = await FakeImds.start({ instanceId });
    });
    afterEach(async () => {
      autoscaling.destroy();
      cloudwatch.destroy();
      await imds.stop();
    });

    const report = (status: number) =>
      runReportFailure({
        // What kiln-worker-failed@kiln-worker.service gets: instance.env and systemd's MONITOR_*.
        env: {
          KILN_SSM_PREFIX: PREFIX,
          AWS_REGION: MOTO_REGION,
          MONITOR_UNIT: "kiln-worker.service",
          MONITOR_SERVICE_RESULT: "exit-code",
          MONITOR_EXIT_CODE: "exited",
          MONITOR_EXIT_STATUS: String(status),
        },
        cloudwatch,
        autoscaling,
        imds: new InstanceMetadata(imds.endpoint),
        log: captureLog().log,
        clock: virtualClock(),
      });
    const health = async () => (await autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }))).AutoScalingInstances![0].HealthStatus?.toUpperCase();
    const failures = async () => {
      const r = await cloudwatch.send(
        new GetMetricStatisticsCommand({
          Namespace: METRICS_NAMESPACE,
          MetricName: METRIC_WORKER_FAILURE,
          Dimensions: [{ Name: METRIC_DIMENSION, Value: STACK }],
          StartTime: new Date(Date.now() - 600_000),
          EndTime: new Date(Date.now() + 600_000),
          Period: 60,
          Statistics: ["Sum"],
        }),
      );
      return (r.Datapoints ?? []).reduce((n, d) => n + (d.Sum ?? 0), 0);
    };

    it("after a crash: one WorkerFailure for the stack (named by the SSM prefix), and the group's instance unhealthy", async () => {
      assert.equal(await health(), "HEALTHY");
      assert.equal(await report(EXIT.CRASHED), EXIT.DRAINED);
      assert.equal(await failures(), 1);
      assert.equal(await health(), "UNHEALTHY");
    });

    /**
     * The shipped bundle as kiln-worker-failed@.service runs it: a user with no passwd entry (what
     * DynamicUser= gives where nss-systemd is missing), the unit's own Environment= lines, the
     * instance's credentials from the SDK's chain.
     */
    const reportAsTheUnit = async (unitEnvironment: string[], until?: RegExp) => {
      await ensureBundle();
      const env: Record<string, string> = {
        PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ...Object.fromEntries(unitEnvironment.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
        KILN_SSM_PREFIX: PREFIX,
        AWS_REGION: MOTO_REGION,
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_ACCESS_KEY_ID: "testing",
        AWS_SECRET_ACCESS_KEY: "testing",
        AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
        MONITOR_UNIT: "kiln-worker.service",
        MONITOR_SERVICE_RESULT: "exit-code",
        MONITOR_EXIT_CODE: "exited",
        MONITOR_EXIT_STATUS: String(EXIT.CRASHED),
      };
      const child = spawn("setpriv", ["--reuid=61234", "--regid=61234", "--clear-groups", process.execPath, BUNDLE, "report-failure"], { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      const seen = (b: Buffer) => {
        out += b.toString();
        // Every call fails and is retried for a minute: once the reason shows, nothing more will come.
        if (until?.test(out)) child.kill("SIGKILL");
      };
      child.stdout.on("data", seen);
      child.stderr.on("data", seen);
      const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
      return { code, out };
    };

    it("reports as the unit runs it: a dynamic user without a passwd entry, HOME from the unit", async () => {
      const environment = readUnit("kiln-worker-failed@.service").get("Service")?.get("Environment") ?? [];
      const r = await reportAsTheUnit(environment);
      assert.equal(r.code, EXIT.DRAINED, r.out);
      assert.equal(await health(), "UNHEALTHY");
      assert.equal(await failures(), 1);
    });

    it("fails without that HOME, which is why the unit sets it (uv_os_homedir)", async () => {
      const r = await reportAsTheUnit([], /uv_os_homedir returned ENOENT/);
      assert.match(r.out, /"PutMetricData failed; retrying"|PutMetricData failed; retrying/);
      assert.match(r.out, /uv_os_homedir returned ENOENT/);
      assert.equal(await health(), "HEALTHY");
    });

    it("after a configuration error (78): the WorkerFailure only, the instance stays healthy", async () => {
      assert.equal(await report(EXIT.CONFIG_ERROR), EXIT.DRAINED);
      assert.equal(await failures(), 1);
      assert.equal(await health(), "HEALTHY");
    });
  });
});
