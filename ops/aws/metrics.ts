import { GetMetricDataCommand, MetricDataQuery, MetricDataResult } from "@aws-sdk/client-cloudwatch";
import { METRIC_DIMENSION, METRIC_FAILED, METRIC_PROCESSED, METRICS_NAMESPACE } from "../../worker/contract";
import type { Throughput } from "../fleet";
import { awsCall } from "./call";
import type { AwsClients } from "./clients";

const MINUTE = 60_000;

type Stat = { namespace: string; metric: string; dimensions: Record<string, string>; stat: string; period: number };

function query(id: string, s: Stat): MetricDataQuery {
  return {
    Id: id,
    MetricStat: {
      Metric: { Namespace: s.namespace, MetricName: s.metric, Dimensions: Object.entries(s.dimensions).map(([Name, Value]) => ({ Name, Value })) },
      Stat: s.stat,
      Period: s.period,
    },
    ReturnData: true,
  };
}

/** Every data point of each query over [start, end), following NextToken; keyed by query id. */
export async function metricSeries(c: AwsClients, queries: MetricDataQuery[], start: Date, end: Date, doing: string): Promise<Map<string, { t: number; v: number }[]>> {
  const out = new Map<string, { t: number; v: number }[]>(queries.map((q) => [q.Id!, []]));
  let NextToken: string | undefined;
  do {
    const page = await awsCall(doing, () =>
      c.cloudwatch.send(new GetMetricDataCommand({ MetricDataQueries: queries, StartTime: start, EndTime: end, ScanBy: "TimestampAscending", NextToken })),
    );
    for (const r of page.MetricDataResults ?? []) collect(out, r);
    NextToken = page.NextToken;
  } while (NextToken);
  for (const points of out.values()) points.sort((a, b) => a.t - b.t);
  return out;
}

function collect(out: Map<string, { t: number; v: number }[]>, r: MetricDataResult): void {
  const points = out.get(r.Id!) ?? [];
  (r.Timestamps ?? []).forEach((t, i) => points.push({ t: new Date(t).getTime(), v: r.Values?.[i] ?? 0 }));
  out.set(r.Id!, points);
}

const workerMetric = (stack: string, metric: string, period = 60): Stat => ({
  namespace: METRICS_NAMESPACE,
  metric,
  dimensions: { [METRIC_DIMENSION]: stack },
  stat: "Sum",
  period,
});

/**
 * Messages processed and failed a minute over the last 5 and 15 minutes, from the workers' own
 * counts (Kiln/Worker). The minute in progress is left out: workers publish once a minute and
 * CloudWatch shows a minute only once it has it, so counting it would understate the rate.
 */
export async function workerThroughput(c: AwsClients, stack: string, now = Date.now()): Promise<Throughput> {
  const end = Math.floor(now / MINUTE) * MINUTE - MINUTE;
  const series = await metricSeries(
    c,
    [query("processed", workerMetric(stack, METRIC_PROCESSED)), query("failed", workerMetric(stack, METRIC_FAILED))],
    new Date(end - 15 * MINUTE),
    new Date(end),
    "reading the workers' Kiln/Worker metrics",
  );
  const sum = (id: string, minutes: number) => (series.get(id) ?? []).filter((p) => p.t >= end - minutes * MINUTE).reduce((a, p) => a + p.v, 0);
  return {
    processed5: sum("processed", 5) / 5,
    processed15: sum("processed", 15) / 15,
    failed15: sum("failed", 15) / 15,
    source: `Kiln/Worker ${METRIC_PROCESSED} (the workers' own counts, minutes to ${new Date(end).toISOString().slice(11, 16)} UTC)`,
  };
}

/** ApproximateAgeOfOldestMessage, the newest data point of the last 10 minutes. */
export async function oldestMessageAge(c: AwsClients, queueName: string, now = Date.now()): Promise<number | undefined> {
  const series = await metricSeries(
    c,
    [query("oldest", { namespace: "AWS/SQS", metric: "ApproximateAgeOfOldestMessage", dimensions: { QueueName: queueName }, stat: "Maximum", period: 60 })],
    new Date(now - 10 * MINUTE),
    new Date(now),
    `reading the oldest message age of ${queueName}`,
  );
  const points = series.get("oldest") ?? [];
  return points.length ? points[points.length - 1].v : undefined;
}

export interface History {
  /** Hourly points over the period. */
  visibleMax: { t: number; v: number }[];
  processed: { t: number; v: number }[];
  inServiceAvg: { t: number; v: number }[];
  inServiceMax: { t: number; v: number }[];
}

/** The stack's last `days` days, hour by hour: what capacity planning reads. */
export async function stackHistory(c: AwsClients, p: { stack: string; queueName: string; groupName: string; days: number; now?: number }): Promise<History> {
  const end = Math.floor((p.now ?? Date.now()) / 3_600_000) * 3_600_000;
  const hour = 3600;
  const group = { AutoScalingGroupName: p.groupName };
  const series = await metricSeries(
    c,
    [
      query("visible", { namespace: "AWS/SQS", metric: "ApproximateNumberOfMessagesVisible", dimensions: { QueueName: p.queueName }, stat: "Maximum", period: hour }),
      query("processed", workerMetric(p.stack, METRIC_PROCESSED, hour)),
      query("inserviceavg", { namespace: "AWS/AutoScaling", metric: "GroupInServiceInstances", dimensions: group, stat: "Average", period: hour }),
      query("inservicemax", { namespace: "AWS/AutoScaling", metric: "GroupInServiceInstances", dimensions: group, stat: "Maximum", period: hour }),
    ],
    new Date(end - p.days * 24 * 3_600_000),
    new Date(end),
    `reading ${p.days} days of the stack's metrics`,
  );
  return {
    visibleMax: series.get("visible")!,
    processed: series.get("processed")!,
    inServiceAvg: series.get("inserviceavg")!,
    inServiceMax: series.get("inservicemax")!,
  };
}
