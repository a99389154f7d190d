import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ServiceQuotasClient } from "@aws-sdk/client-service-quotas";
import { SQSClient } from "@aws-sdk/client-sqs";
import { SSMClient } from "@aws-sdk/client-ssm";

export interface AwsSettings {
  region: string;
  /** One endpoint for every service (LocalStack, moto); undefined: AWS, or the SDK's AWS_ENDPOINT_URL*. */
  endpoint?: string;
}

/** The operator's clients, made on first use with the SDK's own credential chain. */
export class AwsClients {
  private made: { destroy(): void }[] = [];
  private cache = new Map<string, unknown>();

  constructor(readonly settings: AwsSettings) {}

  private client<T extends { destroy(): void }>(key: string, make: (o: AwsSettings) => T): T {
    let c = this.cache.get(key) as T | undefined;
    if (!c) {
      c = make(this.settings);
      this.cache.set(key, c);
      this.made.push(c);
    }
    return c;
  }

  get sqs() {
    return this.client("sqs", (o) => new SQSClient(o));
  }
  get autoscaling() {
    return this.client("autoscaling", (o) => new AutoScalingClient(o));
  }
  get cloudwatch() {
    return this.client("cloudwatch", (o) => new CloudWatchClient(o));
  }
  get logs() {
    return this.client("logs", (o) => new CloudWatchLogsClient(o));
  }
  get ec2() {
    return this.client("ec2", (o) => new EC2Client(o));
  }
  get ssm() {
    return this.client("ssm", (o) => new SSMClient(o));
  }
  get quotas() {
    return this.client("quotas", (o) => new ServiceQuotasClient(o));
  }

  destroy(): void {
    for (const c of this.made) c.destroy();
    this.made = [];
    this.cache.clear();
  }
}
