import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export interface BacklogScalingArgs {
  groupName: pulumi.Input<string>;
  queueName: pulumi.Input<string>;
  /** Messages per in-service instance to aim at (acceptable latency / processing time). */
  backlogTarget: number;
  minSize: number;
  /** Seconds before a new instance counts toward the metric: how soon scale-out may act again. */
  scaleOutWarmup: number;
  tags: Record<string, string>;
}

/**
 * Scaling on backlog per instance, as AWS recommends for queue workers: target tracking on
 * visible messages / in-service instances. That ratio is undefined at zero instances, so a group
 * allowed to sit at zero also gets a step policy that starts one instance when messages arrive.
 */
export class BacklogScaling extends pulumi.ComponentResource {
  readonly targetTracking: aws.autoscaling.Policy;
  readonly fromZero?: aws.autoscaling.Policy;
  readonly fromZeroAlarm?: aws.cloudwatch.MetricAlarm;

  constructor(name: string, args: BacklogScalingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:scaling:BacklogScaling", name, {}, opts);

    const visible = {
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: [{ name: "QueueName", value: args.queueName }],
    };
    const group = (metricName: string) => ({
      namespace: "AWS/AutoScaling",
      metricName,
      dimensions: [{ name: "AutoScalingGroupName", value: args.groupName }],
    });

    this.targetTracking = new aws.autoscaling.Policy(
      `${name}-backlog`,
      {
        autoscalingGroupName: args.groupName,
        policyType: "TargetTrackingScaling",
        estimatedInstanceWarmup: args.scaleOutWarmup,
        targetTrackingConfiguration: {
          targetValue: args.backlogTarget,
          customizedMetricSpecification: {
            metrics: [
              { id: "visible", metricStat: { metric: visible, stat: "Sum" }, returnData: false },
              { id: "inservice", metricStat: { metric: group("GroupInServiceInstances"), stat: "Average" }, returnData: false },
              { id: "backlog", expression: "visible / inservice", label: "Backlog per instance", returnData: true },
            ],
          },
        },
      },
      { parent: this },
    );

    if (args.minSize === 0) {
      this.fromZero = new aws.autoscaling.Policy(
        `${name}-from-zero`,
        {
          autoscalingGroupName: args.groupName,
          policyType: "StepScaling",
          adjustmentType: "ExactCapacity",
          metricAggregationType: "Maximum",
          estimatedInstanceWarmup: args.scaleOutWarmup,
          stepAdjustments: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }],
        },
        { parent: this },
      );

      // Fires only while the desired capacity is zero, so setting it to exactly one can never
      // shrink a group that target tracking has already grown.
      this.fromZeroAlarm = new aws.cloudwatch.MetricAlarm(
        `${name}-from-zero`,
        {
          alarmDescription: "Messages are waiting and the worker group is at zero: start one worker.",
          comparisonOperator: "GreaterThanOrEqualToThreshold",
          threshold: 1,
          evaluationPeriods: 1,
          treatMissingData: "notBreaching",
          metricQueries: [
            { id: "visible", metric: { ...alarmMetric(visible), period: 60, stat: "Maximum" }, returnData: false },
            {
              id: "desired",
              metric: { ...alarmMetric(group("GroupDesiredCapacity")), period: 60, stat: "Maximum" },
              returnData: false,
            },
            { id: "idle", expression: "IF(visible > 0 AND desired == 0, 1, 0)", label: "Backlog at zero capacity", returnData: true },
          ],
          alarmActions: [this.fromZero.arn],
          tags: args.tags,
        },
        { parent: this },
      );
    }

    this.registerOutputs({ targetTrackingPolicyArn: this.targetTracking.arn });
  }
}

/** Alarms take dimensions as a map where scaling policies take a list. */
function alarmMetric(m: { namespace: string; metricName: string; dimensions: { name: string; value: pulumi.Input<string> }[] }) {
  return {
    namespace: m.namespace,
    metricName: m.metricName,
    dimensions: Object.fromEntries(m.dimensions.map((d) => [d.name, d.value])),
  };
}
