import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { METRICS_NAMESPACE, METRIC_DIMENSION, METRIC_FAILED, METRIC_PROCESSED } from "../worker/contract";

export interface FleetMonitoringArgs {
  stack: string;
  region: string;
  queueName: pulumi.Input<string>;
  deadLetterQueueName: pulumi.Input<string>;
  groupName: pulumi.Input<string>;
  /** Seconds: a message waiting longer than this raises the oldest-message alarm. */
  acceptableLatency: number;
  alarmEmail?: string;
  tags: Record<string, string>;
}

/** The alarms an operator needs, sent to one SNS topic, and one dashboard of the whole fleet. */
export class FleetMonitoring extends pulumi.ComponentResource {
  readonly topic: aws.sns.Topic;
  readonly alarms: aws.cloudwatch.MetricAlarm[];
  readonly dashboard: aws.cloudwatch.Dashboard;
  readonly dashboardUrl: pulumi.Output<string>;

  constructor(name: string, args: FleetMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:monitoring:FleetMonitoring", name, {}, opts);

    this.topic = new aws.sns.Topic(`${name}-alarms`, { tags: args.tags }, { parent: this });
    if (args.alarmEmail) {
      new aws.sns.TopicSubscription(
        `${name}-alarms-email`,
        { topic: this.topic.arn, protocol: "email", endpoint: args.alarmEmail },
        { parent: this },
      );
    }
    const notify = { alarmActions: [this.topic.arn], okActions: [this.topic.arn], tags: args.tags };

    const dlqNotEmpty = new aws.cloudwatch.MetricAlarm(
      `${name}-dlq-not-empty`,
      {
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
        ...notify,
      },
      { parent: this },
    );

    const oldestMessage = new aws.cloudwatch.MetricAlarm(
      `${name}-oldest-message`,
      {
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
        ...notify,
      },
      { parent: this },
    );

    // Ten minutes covers a launch from zero; longer means the fleet cannot start (capacity, AMI, IAM).
    const backlogWithoutWorkers = new aws.cloudwatch.MetricAlarm(
      `${name}-backlog-without-workers`,
      {
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
            metric: {
              namespace: "AWS/AutoScaling",
              metricName: "GroupInServiceInstances",
              dimensions: { AutoScalingGroupName: args.groupName },
              period: 60,
              stat: "Maximum",
            },
            returnData: false,
          },
          { id: "stranded", expression: "IF(visible > 0 AND FILL(inservice, 0) == 0, 1, 0)", label: "Backlog with no worker", returnData: true },
        ],
        ...notify,
      },
      { parent: this },
    );
    this.alarms = [dlqNotEmpty, oldestMessage, backlogWithoutWorkers];

    const dashboardName = `kiln-${args.stack}`;
    this.dashboard = new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        dashboardName,
        dashboardBody: pulumi
          .all([args.queueName, args.deadLetterQueueName, args.groupName])
          .apply(([queueName, dlqName, groupName]) => JSON.stringify(dashboardBody(args.region, queueName, dlqName, groupName, args.stack))),
      },
      { parent: this },
    );
    this.dashboardUrl = pulumi.interpolate`https://${args.region}.console.aws.amazon.com/cloudwatch/home?region=${args.region}#dashboards:name=${this.dashboard.dashboardName}`;

    this.registerOutputs({ dashboardUrl: this.dashboardUrl, alarmTopicArn: this.topic.arn });
  }
}

function widget(title: string, region: string, metrics: unknown[][], x: number, y: number, stat = "Maximum") {
  return { type: "metric", x, y, width: 12, height: 6, properties: { title, region, metrics, stat, period: 60, view: "timeSeries" } };
}

function dashboardBody(region: string, queueName: string, dlqName: string, groupName: string, stack: string) {
  return {
    widgets: [
      widget("Backlog (visible messages)", region, [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queueName], [".", "ApproximateNumberOfMessagesNotVisible", ".", "."]], 0, 0),
      widget("Oldest message age (s)", region, [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queueName]], 12, 0),
      widget("In-service instances", region, [["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", groupName], [".", "GroupDesiredCapacity", ".", "."]], 0, 6),
      widget("CPU utilization (%)", region, [["AWS/EC2", "CPUUtilization", "AutoScalingGroupName", groupName]], 12, 6, "Average"),
      widget("Dead-letter queue depth", region, [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlqName]], 0, 12),
      widget("Worker throughput (messages/min)", region, [[METRICS_NAMESPACE, METRIC_PROCESSED, METRIC_DIMENSION, stack], [".", METRIC_FAILED, ".", "."]], 12, 12, "Sum"),
    ],
  };
}
