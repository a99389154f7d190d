import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AutoScalingClient, CreateAutoScalingGroupCommand } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient, PutMetricAlarmCommand, PutMetricDataCommand, SetAlarmStateCommand } from "@aws-sdk/client-cloudwatch";
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { CreateImageCommand, CreateLaunchTemplateCommand, DescribeSubnetsCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { GetParameterCommand, GetParametersByPathCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { recordAmiId } from "../../../ami/publish";
import { AL2023_PARAMETERS } from "../../../ami/steps/resolve-base-image";
import { parseStackConfig } from "../../../infra/config";
import { readStackFile } from "../../../infra/stack-file";
import { renderUserData } from "../../../infra/user-data";
import { workerVariables } from "../../../infra/worker-environment";
import { envDigest } from "../../../ops/aws/drift";
import { stackNames } from "../../../ops/aws/stack-resources";
import { METRIC_DIMENSION, METRIC_FAILED, METRIC_PROCESSED, METRICS_NAMESPACE } from "../../../worker/contract";
import { AwsProxy } from "../../support/fake-aws/aws-proxy";
import { FakeEc2Quotas } from "../../support/fake-aws/ec2-quotas";
import { FakeInstanceRefresh } from "../../support/fake-aws/instance-refresh";
import { FakeMessageMoveTasks } from "../../support/fake-aws/message-move-tasks";
import { Moto, startMoto } from "../../support/moto";
import { REPO } from "../../support/pulumi-harness";
import { kiln, KilnRun } from "./run-kiln";

export const STACK = "prod";

/**
 * What `pulumi up --stack prod` leaves in an account, made in moto by hand with the names kiln
 * gives (index.ts): the queue and DLQ (Pulumi-suffixed names), the worker environment in SSM, a
 * baked image and the one before it, the launch template carrying the environment's digest, the
 * Auto Scaling group, the log group and an alarm. A proxy in front adds what moto lacks.
 */
export class DeployedStack {
  readonly names = stackNames(STACK);
  queueUrl = "";
  dlqUrl = "";
  imageId = "";
  previousImageId = "";
  templateId = "";
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-ops-"));
  readonly sqs: SQSClient;
  readonly autoscaling: AutoScalingClient;
  readonly cloudwatch: CloudWatchClient;
  readonly logs: CloudWatchLogsClient;
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  moves!: FakeMessageMoveTasks;
  refresh!: FakeInstanceRefresh;
  quotas!: FakeEc2Quotas;

  private constructor(
    readonly moto: Moto,
    readonly proxy: AwsProxy,
  ) {
    const o = moto.client();
    this.sqs = new SQSClient(o);
    this.autoscaling = new AutoScalingClient(o);
    this.cloudwatch = new CloudWatchClient(o);
    this.logs = new CloudWatchLogsClient(o);
    this.ec2 = new EC2Client(o);
    this.ssm = new SSMClient(o);
  }

  static async deploy(moto: Moto): Promise<DeployedStack> {
    const proxy = await AwsProxy.start(moto.endpoint);
    const s = new DeployedStack(moto, proxy);
    s.moves = new FakeMessageMoveTasks(proxy, s.sqs);
    s.refresh = new FakeInstanceRefresh(proxy);
    s.quotas = new FakeEc2Quotas(proxy, { "L-1216C47A": 32, "L-34B43A08": 32 });
    await s.create();
    return s;
  }

  /** Runs `kiln <argv> --stack prod` against this account. */
  run(argv: string[], o: { signal?: AbortSignal } = {}): Promise<KilnRun> {
    return kiln([...argv, "--stack", STACK, "--stack-dir", this.dir, "--endpoint-url", this.proxy.endpoint, "--aws"], o);
  }

  cfg() {
    return parseStackConfig(STACK, readStackFile(this.dir, STACK).raw);
  }

  private async create(): Promise<void> {
    fs.copyFileSync(path.join(REPO, `Pulumi.${STACK}.yaml`), path.join(this.dir, `Pulumi.${STACK}.yaml`));
    const dlq = await this.sqs.send(new CreateQueueCommand({ QueueName: `kiln-${STACK}-work-dlq-1a2b3c4`, Attributes: { MessageRetentionPeriod: String(14 * 86400) } }));
    this.dlqUrl = dlq.QueueUrl!;
    const dlqArn = (await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.dlqUrl, AttributeNames: ["QueueArn"] }))).Attributes!.QueueArn;
    const main = await this.sqs.send(
      new CreateQueueCommand({
        QueueName: `kiln-${STACK}-work-5d6e7f8`,
        Attributes: { VisibilityTimeout: "300", RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 }) },
      }),
    );
    this.queueUrl = main.QueueUrl!;

    // The worker environment, as WorkerEnvironment declares it.
    const cfg = this.cfg();
    const vars = workerVariables(cfg, { queueUrl: this.queueUrl, groupName: this.names.groupName, logGroupName: this.names.logGroupName });
    for (const [k, v] of Object.entries(vars)) {
      await this.ssm.send(new PutParameterCommand({ Name: `${this.names.ssmPrefix}${k}`, Value: String(v), Type: "String" }));
    }
    await this.ssm.send(new PutParameterCommand({ Name: `${this.names.ssmPrefix}OPENSEARCH_PASSWORD`, Value: "s3cret", Type: "SecureString" }));

    // Two baked images, the older first; each names the AL2023 image it was built on.
    const base = (await this.ssm.send(new GetParameterCommand({ Name: AL2023_PARAMETERS.x86_64 }))).Parameter!.Value!;
    const subnet = (await this.ec2.send(new DescribeSubnetsCommand({}))).Subnets![0].SubnetId!;
    const builder = (await this.ec2.send(new RunInstancesCommand({ ImageId: base, MinCount: 1, MaxCount: 1, InstanceType: "t3.medium", SubnetId: subnet }))).Instances![0].InstanceId!;
    const bake = async (name: string) =>
      (
        await this.ec2.send(
          new CreateImageCommand({
            InstanceId: builder,
            Name: name,
            TagSpecifications: [{ ResourceType: "image", Tags: [{ Key: "kiln:stack", Value: STACK }, { Key: "ManagedBy", Value: "kiln" }, { Key: "kiln:base-image", Value: base }] }],
          }),
        )
      ).ImageId!;
    this.previousImageId = await bake(`kiln-${STACK}-old`);
    await new Promise((r) => setTimeout(r, 1100));
    this.imageId = await bake(`kiln-${STACK}-new`);
    recordAmiId(this.dir, STACK, this.imageId);

    await this.redeployTemplate();
    await this.autoscaling.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: this.names.groupName,
        MinSize: 1,
        MaxSize: 5,
        DesiredCapacity: 2,
        LaunchTemplate: { LaunchTemplateId: this.templateId, Version: "1" },
        VPCZoneIdentifier: subnet,
      }),
    );

    await this.logs.send(new CreateLogGroupCommand({ logGroupName: this.names.logGroupName }));
    await this.cloudwatch.send(
      new PutMetricAlarmCommand({
        AlarmName: `kiln-${STACK}-monitoring-dlq-not-empty-0a1b2c3`,
        Namespace: "AWS/SQS",
        MetricName: "ApproximateNumberOfMessagesVisible",
        Dimensions: [{ Name: "QueueName", Value: `kiln-${STACK}-work-dlq-1a2b3c4` }],
        Statistic: "Maximum",
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: "GreaterThanThreshold",
      }),
    );
  }

  /** A launch template whose user data carries the digest of the parameters as they are now. */
  async redeployTemplate(): Promise<void> {
    const params: { name: string; type: string; version: number }[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.ssm.send(new GetParametersByPathCommand({ Path: this.names.ssmPrefix, NextToken }));
      params.push(...page.Parameters!.map((p) => ({ name: p.Name!, type: p.Type!, version: p.Version! })));
      NextToken = page.NextToken;
    } while (NextToken);
    const userData = renderUserData({ ssmPrefix: this.names.ssmPrefix, region: this.cfg().region, envDigest: envDigest(this.names.ssmPrefix, params) });
    const lt = await this.ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: `kiln-${STACK}-worker-${Date.now()}`,
        LaunchTemplateData: { ImageId: this.imageId, InstanceType: "t3.medium", UserData: Buffer.from(userData).toString("base64") },
      }),
    );
    this.templateId = lt.LaunchTemplate!.LaunchTemplateId!;
  }

  async setAlarm(state: "ALARM" | "OK"): Promise<void> {
    await this.cloudwatch.send(new SetAlarmStateCommand({ AlarmName: `kiln-${STACK}-monitoring-dlq-not-empty-0a1b2c3`, StateValue: state, StateReason: "Threshold Crossed: 1 datapoint [4.0] was greater than the threshold (0.0)." }));
  }

  /** The workers' per-minute counts, as MetricsPublisher sends them, `minutesAgo` each. */
  async putThroughput(points: { minutesAgo: number; processed: number; failed?: number }[]): Promise<void> {
    const now = Date.now();
    for (const p of points) {
      const at = new Date(now - p.minutesAgo * 60_000);
      const dims = [{ Name: METRIC_DIMENSION, Value: STACK }];
      await this.cloudwatch.send(
        new PutMetricDataCommand({
          Namespace: METRICS_NAMESPACE,
          MetricData: [
            { MetricName: METRIC_PROCESSED, Dimensions: dims, Timestamp: at, Value: p.processed, Unit: "Count" },
            { MetricName: METRIC_FAILED, Dimensions: dims, Timestamp: at, Value: p.failed ?? 0, Unit: "Count" },
          ],
        }),
      );
    }
  }

  private streams = new Set<string>();

  /** Worker lines shipped to the log group, as the CloudWatch agent does: one stream per instance. */
  async putLogLines(instance: string, lines: object[]): Promise<void> {
    if (!this.streams.has(instance)) {
      await this.logs.send(new CreateLogStreamCommand({ logGroupName: this.names.logGroupName, logStreamName: instance }));
      this.streams.add(instance);
    }
    const now = Date.now();
    await this.logs.send(
      new PutLogEventsCommand({
        logGroupName: this.names.logGroupName,
        logStreamName: instance,
        logEvents: lines.map((l, i) => ({ timestamp: now - (lines.length - i), message: JSON.stringify({ time: new Date(now - (lines.length - i)).toISOString(), ...l }) })),
      }),
    );
  }

  async stop(): Promise<void> {
    for (const c of [this.sqs, this.autoscaling, this.cloudwatch, this.logs, this.ec2, this.ssm]) c.destroy();
    await this.proxy.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A moto server and a deployed stack for a suite's tests, made before them and removed after; the
 * operator's credentials set meanwhile. `ready` is given the stack.
 */
export function deployedStackSuite(ready: (stack: DeployedStack) => void): void {
  let moto: Moto | undefined;
  let stack: DeployedStack | undefined;
  let restore: (() => void) | undefined;
  before(async function () {
    this.timeout(120_000);
    restore = useTestCredentials();
    moto = await startMoto();
    stack = await DeployedStack.deploy(moto);
    ready(stack);
  });
  after(async () => {
    await stack?.stop();
    await moto?.stop();
    restore?.();
  });
}

export const TEST_CREDENTIALS = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing" };

/** The operator's credentials for the suite, and the previous environment back afterwards. */
export function useTestCredentials(): () => void {
  const saved = { ...process.env };
  Object.assign(process.env, TEST_CREDENTIALS, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" });
  delete process.env.AWS_PROFILE;
  return () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  };
}
