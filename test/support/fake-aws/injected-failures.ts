/**
 * The failures a fake AWS API was told to throw: each fake keeps one, and checks it on every call
 * before serving it. Shared so every fake fails calls the same way.
 */
export class InjectedFailures {
  private readonly pending: { operation: string; error: Error; skip: number; remaining: number }[] = [];

  /**
   * The next `times` calls of `operation` (Infinity: every one) throw `error` instead of being
   * served, after letting `skip` calls through (to fail, say, the second page of a read).
   */
  add(operation: string, error: Error, times = 1, skip = 0): void {
    this.pending.push({ operation, error, skip, remaining: times });
  }

  /** Drops failures added and not yet thrown. */
  clear(): void {
    this.pending.length = 0;
  }

  /** Throws the failure due for this call of `operation`, if one is. */
  throwFor(operation: string): void {
    const f = this.pending.find((x) => x.operation === operation && x.remaining > 0);
    if (!f) return;
    if (f.skip > 0) {
      f.skip--;
      return;
    }
    f.remaining--;
    throw f.error;
  }
}

/**
 * One call to a fake, served the way every fake serves it: recorded, shown to `onCall`, failed if a
 * failure is due, else answered; a failed call keeps its error in the record.
 */
export async function serveCall<C extends { operation: string; error?: Error }>(
  calls: C[],
  failures: InjectedFailures,
  call: C,
  answer: () => object | Promise<object>,
  onCall?: (call: C, index: number) => void,
): Promise<object> {
  calls.push(call);
  try {
    onCall?.(call, calls.length - 1);
    failures.throwFor(call.operation);
    return { $metadata: { httpStatusCode: 200 }, ...(await answer()) };
  } catch (e) {
    call.error = e as Error;
    throw e;
  }
}
