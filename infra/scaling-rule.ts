/**
 * The backlog-per-instance rule AWS recommends for queue workers, in one place: the Pulumi program
 * turns it into a target tracking policy, and `npm run local` scales its worker processes with it.
 */

/** Messages one instance may have waiting and still finish them within the acceptable latency. */
export function backlogTarget(acceptableLatencySeconds: number, avgProcessingMs: number): number {
  return Math.floor((acceptableLatencySeconds * 1000) / avgProcessingMs);
}

/**
 * The capacity target tracking settles on for a backlog: enough instances that each has at most
 * `target` messages waiting, within [min, max]. Any backlog at all means at least one instance,
 * which is what the step policy guarantees in AWS when the group sits at zero.
 */
export function desiredCapacity(visible: number, target: number, min: number, max: number): number {
  const wanted = visible <= 0 ? 0 : Math.ceil(visible / target);
  return Math.min(max, Math.max(min, wanted));
}
