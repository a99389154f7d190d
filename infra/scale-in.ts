/**
 * How long a worker being scaled in may drain, and the terminate lifecycle hook that holds its
 * instance meanwhile. The worker drains from the lifecycle state (scale-in, instance refresh,
 * rebalancing), not from SIGTERM: it stops receiving, finishes or releases what it holds within
 * WORKER_SCALE_IN_TIMEOUT, heartbeating the lifecycle action, then completes it.
 */

import { SCALE_IN_HEARTBEAT_INTERVAL, scaleInBudget } from "../worker/contract";

export { SCALE_IN_HEARTBEAT_INTERVAL, scaleInBudget };

/** Heartbeats that may be missed (a throttled call, a slow network) before the hook gives up. */
const MISSED_HEARTBEATS = 3;
/**
 * Seconds besides the budget: the worker notices the lifecycle state by polling instance metadata,
 * and releasing what is left and completing the action take a moment.
 */
export const SCALE_IN_MARGIN = 60;

/**
 * AWS PutLifecycleHook: HeartbeatTimeout "The range is from 30 to 7200 seconds"; an instance stays
 * in a wait state at most "172800 seconds (48 hours) or 100 times HeartbeatTimeout, whichever is
 * smaller" (LifecycleHook.GlobalTimeout).
 */
export const LIFECYCLE_HOOK_LIMITS = { minHeartbeat: 30, maxHeartbeat: 7200, maxWait: 172_800, waitPerHeartbeat: 100 } as const;

/**
 * The hook's heartbeat timeout: long enough to survive a few missed heartbeats, short enough that an
 * instance whose worker is gone is released soon, and long enough that 100 of them cover the budget.
 */
export function lifecycleHeartbeatTimeout(budget: number): number {
  const { minHeartbeat, maxHeartbeat, waitPerHeartbeat } = LIFECYCLE_HOOK_LIMITS;
  const survive = SCALE_IN_HEARTBEAT_INTERVAL * (MISSED_HEARTBEATS + 1);
  const cover = Math.ceil((budget + SCALE_IN_MARGIN) / waitPerHeartbeat);
  return Math.min(maxHeartbeat, Math.max(minHeartbeat, survive, cover));
}

/** The longest an instance can be held: what AWS allows for this heartbeat timeout. */
export function longestWait(heartbeatTimeout: number): number {
  return Math.min(LIFECYCLE_HOOK_LIMITS.maxWait, LIFECYCLE_HOOK_LIMITS.waitPerHeartbeat * heartbeatTimeout);
}

/** What is wrong with a scale-in budget, each naming the keys; empty when it works. */
export function scaleInProblems(scaleInTimeout: number, processingTimeout: number): string[] {
  const problems: string[] = [];
  if (scaleInTimeout !== 0 && scaleInTimeout < processingTimeout) {
    problems.push(
      `kiln:scaleInTimeout (${scaleInTimeout}) is below kiln:processingTimeout (${processingTimeout}): a message that has just ` +
        `started would be cut short on every scale-in and spend one of its receives; set it to ${processingTimeout} or more, or 0`,
    );
    return problems;
  }
  const budget = scaleInBudget(scaleInTimeout, processingTimeout);
  const wait = longestWait(lifecycleHeartbeatTimeout(budget));
  if (budget + SCALE_IN_MARGIN > wait) {
    problems.push(
      `kiln:scaleInTimeout (${budget} s) plus ${SCALE_IN_MARGIN} s exceeds the ${wait} s AWS lets a lifecycle hook hold an instance ` +
        `(48 hours, or 100 times its heartbeat timeout of at most 7200 s): lower it`,
    );
  }
  return problems;
}
