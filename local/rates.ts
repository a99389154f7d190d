/**
 * Processed and failed messages counted per second over the last 15 minutes: what `kiln status`
 * reads as the 5- and 15-minute rates, the same windows it reads from CloudWatch for a deployed
 * stack. Counts, not queue-depth differences, which lie while producers add messages.
 */
export class RateHistory {
  private readonly buckets = new Map<number, { processed: number; failed: number }>();
  static readonly SPAN_MS = 15 * 60_000;

  constructor(private readonly startedAt: number) {}

  record(kind: "processed" | "failed", now = Date.now()): void {
    const second = Math.floor(now / 1000);
    const b = this.buckets.get(second) ?? { processed: 0, failed: 0 };
    b[kind]++;
    this.buckets.set(second, b);
    if (this.buckets.size > RateHistory.SPAN_MS / 1000 + 60) this.prune(now);
  }

  /**
   * Per minute over the last `minutes`, or over the run so far when it is younger than that;
   * undefined before the first full second.
   */
  perMinute(kind: "processed" | "failed", minutes: number, now = Date.now()): number | undefined {
    const span = Math.min(minutes * 60_000, now - this.startedAt);
    if (span < 1000) return undefined;
    const from = Math.floor((now - span) / 1000);
    let n = 0;
    for (const [second, b] of this.buckets) if (second >= from) n += b[kind];
    return (n * 60_000) / span;
  }

  private prune(now: number): void {
    const oldest = Math.floor((now - RateHistory.SPAN_MS) / 1000);
    for (const second of this.buckets.keys()) if (second < oldest) this.buckets.delete(second);
  }
}
