/** How long to keep trying, and how fast: exponential backoff with full jitter, capped, up to a deadline. */
export interface RetryPolicy {
  /** Give up once this much time has passed since the first attempt. */
  deadlineMs: number;
  /** The first delay's ceiling; each retry doubles it. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Time and chance, injectable so tests run fast and deterministically. */
export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
  random(): number;
}

export const realClock: RetryClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: () => Math.random(),
};

/** The last error of an operation that never succeeded before its deadline, or could not. */
export class RetriesExhausted extends Error {
  constructor(
    readonly lastError: unknown,
    readonly attempts: number,
    readonly elapsedMs: number,
  ) {
    super(`${describeError(lastError)} (after ${attempts} attempt${attempts === 1 ? "" : "s"} over ${(elapsedMs / 1000).toFixed(1)}s)`);
    this.name = "RetriesExhausted";
  }
}

export interface RetryOptions {
  policy: RetryPolicy;
  /** False for errors that another attempt cannot fix (a malformed request): give up at once. */
  isRetryable(error: unknown): boolean;
  onRetry?(error: unknown, attempt: number, delayMs: number): void;
  clock?: RetryClock;
}

/**
 * Runs `attempt` until it resolves. Full jitter (a random delay up to the exponential ceiling) keeps a
 * fleet that booted together from retrying in lockstep against a throttled API.
 */
export async function retryUntilDeadline<T>(attempt: () => Promise<T>, o: RetryOptions): Promise<T> {
  const clock = o.clock ?? realClock;
  const started = clock.now();
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      const elapsed = clock.now() - started;
      const remaining = o.policy.deadlineMs - elapsed;
      if (!o.isRetryable(e) || remaining <= 0) throw new RetriesExhausted(e, n, elapsed);
      const ceiling = Math.min(o.policy.maxDelayMs, o.policy.baseDelayMs * 2 ** (n - 1));
      const delay = Math.min(remaining, Math.round(clock.random() * ceiling));
      o.onRetry?.(e, n, delay);
      await clock.sleep(delay);
    }
  }
}

/** "Name: message" for AWS SDK errors, Node network errors and anything else thrown. */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const name = e.name !== "Error" ? e.name : typeof code === "string" ? code : "Error";
    const cause = e.cause instanceof Error ? ` (${describeError(e.cause)})` : "";
    return `${name}: ${e.message || "(no message)"}${cause}`;
  }
  return String(e);
}
