import { METRICS_NAMESPACE, METRIC_DIMENSION, METRIC_FAILED, METRIC_PROCESSED } from "../worker/contract";
import { AGENT_METRICS_NAMESPACE } from "./worker-policy";

/**
 * What the CloudWatch agent baked into the image publishes (ami/scripts/provision/70-cloudwatch-agent.sh):
 * memory and root-disk use in percent, with the same Stack dimension as the worker's own metrics.
 */
export const AGENT_METRICS = { memory: "mem_used_percent", disk: "disk_used_percent" } as const;

export interface DashboardNames {
  region: string;
  stack: string;
  queueName: string;
  deadLetterQueueName: string;
  groupName: string;
}

function widget(title: string, region: string, metrics: unknown[][], x: number, y: number, stat = "Maximum", period = 60) {
  return { type: "metric", x, y, width: 12, height: 6, properties: { title, region, metrics, stat, period, view: "timeSeries" } };
}

/** One dashboard of the whole fleet: the queue, the group, the instances and the workers. */
export function dashboardBody(n: DashboardNames) {
  const { region, stack } = n;
  return {
    widgets: [
      widget("Backlog (visible messages)", region, [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", n.queueName], [".", "ApproximateNumberOfMessagesNotVisible", ".", "."]], 0, 0),
      widget("Oldest message age (s)", region, [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", n.queueName]], 12, 0),
      widget("In-service instances", region, [["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", n.groupName], [".", "GroupDesiredCapacity", ".", "."]], 0, 6),
      // Basic monitoring: EC2 reports every 5 minutes (detailed monitoring would cost and nothing reads it faster).
      widget("CPU utilization (%)", region, [["AWS/EC2", "CPUUtilization", "AutoScalingGroupName", n.groupName]], 12, 6, "Average", 300),
      widget("Dead-letter queue depth", region, [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", n.deadLetterQueueName]], 0, 12),
      widget("Worker throughput (messages/min)", region, [[METRICS_NAMESPACE, METRIC_PROCESSED, METRIC_DIMENSION, stack], [".", METRIC_FAILED, ".", "."]], 12, 12, "Sum"),
      widget("Memory used (%), busiest instance", region, [[AGENT_METRICS_NAMESPACE, AGENT_METRICS.memory, METRIC_DIMENSION, stack]], 0, 18),
      widget("Root disk used (%), fullest instance", region, [[AGENT_METRICS_NAMESPACE, AGENT_METRICS.disk, METRIC_DIMENSION, stack]], 12, 18),
    ],
  };
}
