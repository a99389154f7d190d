import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { METRICS_NAMESPACE, METRIC_DIMENSION, METRIC_FAILED, METRIC_PROCESSED, METRIC_WORKER_FAILURE } from "../worker/contract";
import { dashboardBody } from "./fleet-dashboard";

export interface FleetMonitoringArgs {
  stack: string;
  region: string;
  queueName: pulumi.Input<string>;
  deadLetterQueueName: pulumi.Input<string>;
  groupName: pulumi.Input<string>;
  /** Seconds: a message waiting longer than this raises the oldest-message alarm. */
  acceptableLatency: number;
  /** Percent of handled messages failing over 5 minutes that raises the error-rate alarm. */
  errorRateAlarmPercent: number;
  /** Alarm on surplus CPU credits billed: the workers are burstable and run unlimited. */
  watchSurplusCredits: boolean;
  alarmEmail?: string;
  /** Fixed, so the stack key's policy can name the topic before it exists. */
  topicName: string;
  /** Every alarm's name starts with it: the key lets only these alarms publish to the topic. */
  alarmNamePrefix: string;
  /** The stack key: alarm notifications are encrypted at rest with it. */
  keyArn: pulumi.Input<string>;
  tags: Record<string, string>;
}

/** Fewer handled messages than this in the window say nothing about a rate; the DLQ alarm covers them. */
const ERROR_RATE_MIN_MESSAGES = 10;

/** The alarms an operator needs, sent to one encrypted SNS topic, and one dashboard of the whole fleet. */
export class FleetMonitoring extends pulumi.ComponentResource {
  readonly topic: aws.sns.Topic;
  readonly alarms: aws.cloudwatch.MetricAlarm[] = [];
  readonly dashboard: aws.cloudwatch.Dashboard;
  readonly dashboardUrl: pulumi.Output<string>;

  constructor(name: string, args: FleetMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:monitoring:FleetMonitoring", name, {}, opts);

    this.topic = new aws.sns.Topic(`${name}-alarms`, { name: args.topicName, kmsMasterKeyId: args.keyArn, tags: args.tags }, { parent: this });
    if (args.alarmEmail) {
      new aws.sns.TopicSubscription(
        `${name}-alarms-email`,
        { topic: this.topic.arn, protocol: "email", endpoint: args.alarmEmail },
        { parent: this },
      );
    }
    const alarm = (part: string, props: Omit<aws.cloudwatch.MetricAlarmArgs, "name" | "alarmActions" | "okActions" | "tags">) =>
      this.alarms.push(
        new aws.cloudwatch.MetricAlarm(
          `${name}-${part}`,
          { ...props, name: `${args.alarmNamePrefix}${part}`, alarmActions: [this.topic.arn], okActions: [this.topic.arn], tags: args.tags },
          { parent: this },
        ),
      );
    const worker = (metricName: string) => ({ namespace: METRICS_NAMESPACE, metricName, dimensions: { [METRIC_DIMENSION]: args.stack } });

    alarm("dlq-not-empty", {
      alarmDescription: "Messages reached the dead-letter queue: they failed every try. Inspect, fix, then redrive.",
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: args.deadLetterQueueName },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 1,
      comparisonOperator: "GreaterThanThreshold",
      threshold: 0,
      treatMissingData: "notBreaching",
    });

    alarm("oldest-message", {
      alarmDescription: `A message has waited longer than the acceptable latency (${args.acceptableLatency} s).`,
      namespace: "AWS/SQS",
      metricName: "ApproximateAgeOfOldestMessage",
      dimensions: { QueueName: args.queueName },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      comparisonOperator: "GreaterThanThreshold",
      threshold: args.acceptableLatency,
      treatMissingData: "notBreaching",
    });

    // Ten minutes covers a launch from zero; longer means the fleet cannot start (capacity, AMI, IAM).
    alarm("backlog-without-workers", {
      alarmDescription: "Messages are waiting but no worker instance is in service.",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      evaluationPeriods: 10,
      datapointsToAlarm: 10,
      treatMissingData: "notBreaching",
      metricQueries: [
        {
          id: "visible",
          metric: { namespace: "AWS/SQS", metricName: "ApproximateNumberOfMessagesVisible", dimensions: { QueueName: args.queueName }, period: 60, stat: "Maximum" },
          returnData: false,
        },
        {
          id: "inservice",
          metric: { namespace: "AWS/AutoScaling", metricName: "GroupInServiceInstances", dimensions: { AutoScalingGroupName: args.groupName }, period: 60, stat: "Maximum" },
          returnData: false,
        },
        { id: "stranded", expression: "IF(visible > 0 AND FILL(inservice, 0) == 0, 1, 0)", label: "Backlog with no worker", returnData: true },
      ],
    });

    // kiln-worker-failed.service publishes one when a worker gives up (a configuration error, a
    // crash loop, an environment SSM would not give): an idle fleet says so within a minute.
    alarm("worker-failure", {
      alarmDescription: "A worker stopped for good on an instance (see the instance's log stream in the worker log group).",
      ...worker(METRIC_WORKER_FAILURE),
      statistic: "Sum",
      period: 60,
      evaluationPeriods: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      treatMissingData: "notBreaching",
    });

    alarm("error-rate", {
      alarmDescription:
        `More than ${args.errorRateAlarmPercent}% of the messages handled in 5 minutes failed ` +
        `(counted once at least ${ERROR_RATE_MIN_MESSAGES} were handled).`,
      comparisonOperator: "GreaterThanThreshold",
      threshold: args.errorRateAlarmPercent,
      evaluationPeriods: 1,
      treatMissingData: "notBreaching",
      metricQueries: [
        { id: "processed", metric: { ...worker(METRIC_PROCESSED), period: 300, stat: "Sum" }, returnData: false },
        { id: "failed", metric: { ...worker(METRIC_FAILED), period: 300, stat: "Sum" }, returnData: false },
        {
          id: "rate",
          expression:
            `IF(FILL(processed, 0) + FILL(failed, 0) >= ${ERROR_RATE_MIN_MESSAGES}, ` +
            `100 * FILL(failed, 0) / (FILL(processed, 0) + FILL(failed, 0)), 0)`,
          label: "Failed messages (%)",
          returnData: true,
        },
      ],
    });

    if (args.watchSurplusCredits) {
      alarm("surplus-credits-charged", {
        alarmDescription: "Unlimited burstable workers ran above their baseline long enough that AWS bills surplus CPU credits.",
        namespace: "AWS/EC2",
        metricName: "CPUSurplusCreditsCharged",
        dimensions: { AutoScalingGroupName: args.groupName },
        statistic: "Sum",
        period: 300,
        evaluationPeriods: 1,
        comparisonOperator: "GreaterThanThreshold",
        threshold: 0,
        treatMissingData: "notBreaching",
      });
    }

    this.dashboard = new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        dashboardName: `kiln-${args.stack}`,
        dashboardBody: pulumi
          .all([args.queueName, args.deadLetterQueueName, args.groupName])
          .apply(([queueName, deadLetterQueueName, groupName]) =>
            JSON.stringify(dashboardBody({ region: args.region, stack: args.stack, queueName, deadLetterQueueName, groupName })),
          ),
      },
      { parent: this },
    );
    this.dashboardUrl = pulumi.interpolate`https://${args.region}.console.aws.amazon.com/cloudwatch/home?region=${args.region}#dashboards:name=${this.dashboard.dashboardName}`;

    this.registerOutputs({ dashboardUrl: this.dashboardUrl, alarmTopicArn: this.topic.arn });
  }
}
