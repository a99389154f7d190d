import { CloudWatchClient, MetricDatum, PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { METRICS_NAMESPACE, METRIC_DIMENSION, METRIC_FAILED, METRIC_LATENCY, METRIC_PROCESSED } from "./contract";

/**
 * Counts processed and failed messages and their latency, and publishes them to CloudWatch once a
 * period as a handful of data points: one request a minute, not one per message.
 */
export class MetricsPublisher {
  private processed = 0;
  private failed = 0;
  private latency: number[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly cloudwatch: CloudWatchClient,
    private readonly stack: string,
    private readonly onError: (e: Error) => void,
    private readonly periodMs = 60_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.periodMs);
    this.timer.unref();
  }

  recordProcessed(ms: number): void {
    this.processed++;
    this.latency.push(ms);
  }

  recordFailed(): void {
    this.failed++;
  }

  /** Publishes what was counted since the last flush; a failure is reported, never thrown. */
  async flush(): Promise<void> {
    const data = this.take();
    if (data.length === 0) return;
    try {
      await this.cloudwatch.send(new PutMetricDataCommand({ Namespace: METRICS_NAMESPACE, MetricData: data }));
    } catch (e) {
      this.onError(e as Error);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private take(): MetricDatum[] {
    const dims = [{ Name: METRIC_DIMENSION, Value: this.stack }];
    const at = new Date();
    const data: MetricDatum[] = [];
    if (this.processed || this.failed) {
      data.push({ MetricName: METRIC_PROCESSED, Dimensions: dims, Timestamp: at, Unit: "Count", Value: this.processed });
      data.push({ MetricName: METRIC_FAILED, Dimensions: dims, Timestamp: at, Unit: "Count", Value: this.failed });
    }
    if (this.latency.length) {
      const l = this.latency;
      let min = Infinity;
      let max = -Infinity;
      let sum = 0;
      for (const v of l) {
        min = Math.min(min, v);
        max = Math.max(max, v);
        sum += v;
      }
      data.push({
        MetricName: METRIC_LATENCY,
        Dimensions: dims,
        Timestamp: at,
        Unit: "Milliseconds",
        StatisticValues: { SampleCount: l.length, Sum: sum, Minimum: min, Maximum: max },
      });
    }
    this.processed = 0;
    this.failed = 0;
    this.latency = [];
    return data;
  }
}
