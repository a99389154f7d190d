/**
 * Messages processed over a trailing window. A window, not the run's average, so the rate and the
 * ETA follow the fleet as it scales instead of lagging behind its start.
 */
export class Throughput {
  private readonly times: number[] = [];
  total = 0;

  constructor(
    private readonly startedAt: number,
    private readonly windowMs = 20_000,
  ) {}

  record(now = Date.now()): void {
    this.total++;
    this.times.push(now);
  }

  /** Messages per minute over the window (or the time since start, when shorter). */
  perMinute(now = Date.now()): number {
    while (this.times.length && now - this.times[0] > this.windowMs) this.times.shift();
    const span = Math.min(this.windowMs, now - this.startedAt);
    return span <= 0 ? 0 : (this.times.length * 60_000) / span;
  }

  /** Seconds until `remaining` messages are done at the current rate; undefined while nothing is. */
  etaSeconds(remaining: number, now = Date.now()): number | undefined {
    if (remaining === 0) return 0;
    const rate = this.perMinute(now);
    return rate > 0 ? (remaining * 60) / rate : undefined;
  }
}
