/**
 * Seconds the oldest message of a queue on the embedded SQS has waited, from fauxqs's read-only
 * inspection endpoint (SQS reports it only as a CloudWatch metric). The answer is kept a few
 * seconds: the endpoint returns every message, which is heavy on a backlog of hundreds of thousands.
 */
export class OldestAge {
  private cache = new Map<string, { at: number; value?: number; keepMs: number }>();

  constructor(
    private readonly endpoint: string,
    private readonly keepMs = 5_000,
    /** Above this many messages a reading is kept longer: it costs the whole queue's JSON. */
    private readonly bigQueue = 10_000,
  ) {}

  async seconds(queueName: string, now = Date.now()): Promise<number | undefined> {
    const hit = this.cache.get(queueName);
    // The oldest message ages with the clock while the reading is kept.
    if (hit && now - hit.at < hit.keepMs) return hit.value === undefined ? undefined : hit.value + (now - hit.at) / 1000;
    let value: number | undefined;
    let size = 0;
    try {
      const res = await fetch(`${this.endpoint}/_fauxqs/queues/${encodeURIComponent(queueName)}`);
      if (res.ok) {
        const body = (await res.json()) as {
          messages?: { ready?: { sentTimestamp?: number }[]; inflight?: { message?: { sentTimestamp?: number } }[] };
        };
        size = (body.messages?.ready?.length ?? 0) + (body.messages?.inflight?.length ?? 0);
        // A loop, not Math.min(...all): a spread of 256,196 arguments overflows the stack.
        let oldest = Infinity;
        for (const m of body.messages?.ready ?? []) if (typeof m.sentTimestamp === "number") oldest = Math.min(oldest, m.sentTimestamp);
        for (const m of body.messages?.inflight ?? []) {
          const t = m.message?.sentTimestamp;
          if (typeof t === "number") oldest = Math.min(oldest, t);
        }
        value = Number.isFinite(oldest) ? Math.max(0, (now - oldest) / 1000) : undefined;
      }
    } catch {
      value = undefined;
    }
    this.cache.set(queueName, { at: now, value, keepMs: size > this.bigQueue ? this.keepMs * 6 : this.keepMs });
    return value;
  }
}
