import { AutoScalingClient, CreateAutoScalingGroupCommand, CreateLaunchConfigurationCommand, DescribeAutoScalingInstancesCommand } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient, GetMetricStatisticsCommand } from "@aws-sdk/client-cloudwatch";
import { DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { DeleteParametersCommand, GetParametersByPathCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { METRICS_NAMESPACE, METRIC_DIMENSION, METRIC_WORKER_FAILURE, ssmPrefix } from "../../worker/contract";
import { FakeImds } from "../support/fake-aws/imds";
import { Moto, startMoto } from "../support/moto";
import { TestSqs } from "../support/sqs";

/** The instance role's name, as IMDS lists it; the SDK's default chain finds its keys there. */
const ROLE = "kiln-worker-prod";

/**
 * What `pulumi up` and EC2 give a stack's instances, on 127.0.0.1: moto for SSM (SecureStrings under
 * a KMS key), Auto Scaling and CloudWatch; the embedded SQS for the queue and its DLQ; an IMDSv2
 * stand-in answering the instance's id and its role's credentials.
 */
export class StackCloud {
  readonly prefix: string;
  private readonly ssm: SSMClient;
  private readonly kms: KMSClient;
  private readonly autoscaling: AutoScalingClient;
  private readonly cloudwatch: CloudWatchClient;
  private keyId = "";
  private groups = 0;

  private constructor(
    readonly stack: string,
    readonly region: string,
    readonly moto: Moto,
    readonly sqs: TestSqs,
    readonly imds: FakeImds,
    readonly queue: { url: string; dlqUrl: string },
  ) {
    this.prefix = ssmPrefix(stack);
    this.ssm = new SSMClient(moto.client(region));
    this.kms = new KMSClient(moto.client(region));
    this.autoscaling = new AutoScalingClient(moto.client(region));
    this.cloudwatch = new CloudWatchClient(moto.client(region));
  }

  static async start(stack: string, region: string, opts: { visibilityTimeout: number; maxReceiveCount: number }): Promise<StackCloud> {
    const moto = await startMoto();
    const sqs = await TestSqs.start();
    const imds = await FakeImds.start();
    const queue = await sqs.queuePair(`kiln-${stack}-work`, opts);
    const cloud = new StackCloud(stack, region, moto, sqs, imds, queue);
    cloud.keyId = (await cloud.kms.send(new CreateKeyCommand({ Description: `kiln ${stack} worker environment` }))).KeyMetadata!.KeyId!;
    const expires = new Date(Date.now() + 6 * 3600_000).toISOString();
    imds.metadata.set("iam/security-credentials/", ROLE);
    imds.metadata.set(
      `iam/security-credentials/${ROLE}`,
      JSON.stringify({ Code: "Success", Type: "AWS-HMAC", AccessKeyId: "ASIAKILNBOOTTEST0001", SecretAccessKey: "boot-test-secret", Token: "boot-test-token", Expiration: expires, LastUpdated: new Date().toISOString() }),
    );
    imds.metadata.set("placement/region", region);
    return cloud;
  }

  /** Port of the SSM / Auto Scaling / CloudWatch endpoint (moto) and of the SQS one on 127.0.0.1. */
  get motoPort(): number {
    return this.moto.port;
  }

  get sqsPort(): number {
    return Number(new URL(this.sqs.endpoint).port);
  }

  get imdsPort(): number {
    return Number(new URL(this.imds.endpoint).port);
  }

  /**
   * A group with one instance, as the fleet's ASG would have; IMDS then answers that instance's id,
   * so the instance that boots next is that one.
   */
  async launchInstance(): Promise<{ groupName: string; instanceId: string }> {
    const groupName = `kiln-${this.stack}-workers-${++this.groups}`;
    const ec2 = new EC2Client(this.moto.client(this.region));
    const image = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
    ec2.destroy();
    await this.autoscaling.send(new CreateLaunchConfigurationCommand({ LaunchConfigurationName: groupName, ImageId: image, InstanceType: "t3.medium" }));
    await this.autoscaling.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: groupName,
        LaunchConfigurationName: groupName,
        MinSize: 1,
        MaxSize: 1,
        DesiredCapacity: 1,
        AvailabilityZones: [`${this.region}a`],
      }),
    );
    const instances = await this.autoscaling.send(new DescribeAutoScalingInstancesCommand({}));
    const instanceId = instances.AutoScalingInstances!.find((i) => i.AutoScalingGroupName === groupName)!.InstanceId!;
    this.imds.metadata.set("instance-id", instanceId);
    return { groupName, instanceId };
  }

  /** Replaces the stack's parameters, as `pulumi up` leaves them: Strings, and SecureStrings under the stack's KMS key. */
  async putEnvironment(plain: Record<string, string>, secret: Record<string, string> = {}): Promise<void> {
    const names: string[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.ssm.send(new GetParametersByPathCommand({ Path: this.prefix.slice(0, -1), Recursive: true, NextToken }));
      names.push(...(page.Parameters ?? []).map((p) => p.Name!));
      NextToken = page.NextToken;
    } while (NextToken);
    for (let i = 0; i < names.length; i += 10) await this.ssm.send(new DeleteParametersCommand({ Names: names.slice(i, i + 10) }));
    for (const [name, value] of Object.entries(plain)) {
      await this.ssm.send(new PutParameterCommand({ Name: `${this.prefix}${name}`, Value: value, Type: "String", Overwrite: true }));
    }
    for (const [name, value] of Object.entries(secret)) {
      await this.ssm.send(new PutParameterCommand({ Name: `${this.prefix}${name}`, Value: value, Type: "SecureString", KeyId: this.keyId, Overwrite: true }));
    }
  }

  async instanceHealth(instanceId: string): Promise<string | undefined> {
    const r = await this.autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }));
    return r.AutoScalingInstances?.[0]?.HealthStatus;
  }

  /** WorkerFailure data points the stack's instances published. */
  async workerFailures(): Promise<number> {
    const r = await this.cloudwatch.send(
      new GetMetricStatisticsCommand({
        Namespace: METRICS_NAMESPACE,
        MetricName: METRIC_WORKER_FAILURE,
        Dimensions: [{ Name: METRIC_DIMENSION, Value: this.stack }],
        StartTime: new Date(Date.now() - 3600_000),
        EndTime: new Date(Date.now() + 3600_000),
        Period: 60,
        Statistics: ["SampleCount"],
      }),
    );
    return (r.Datapoints ?? []).reduce((n, d) => n + (d.SampleCount ?? 0), 0);
  }

  async stop(): Promise<void> {
    for (const c of [this.ssm, this.kms, this.autoscaling, this.cloudwatch]) c.destroy();
    await this.imds.stop();
    await this.sqs.stop();
    await this.moto.stop();
  }
}
