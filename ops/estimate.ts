import { desiredCapacity } from "../infra/scaling-rule";

/**
 * Minutes of low backlog EC2 target tracking waits before it removes an instance (its scale-in
 * alarm: 15 one-minute data points), so a group scaled out stays at that size while the tail of a
 * backlog is worked off.
 */
export const TARGET_TRACKING_SCALE_IN_MINUTES = 15;

export interface EstimateInput {
  backlog: number;
  /** Messages one instance processes a minute. */
  perInstance: number;
  /** A fixed number of instances; undefined: the stack's rule decides. */
  instances?: number;
  rule: { target: number; min: number; max: number };
}

export interface Segment {
  /** Minutes from the start. */
  at: number;
  instances: number;
  /** Messages left when the segment starts. */
  backlog: number;
}

export interface Estimate {
  /** Minutes until the backlog is gone; Infinity when nothing would process it. */
  minutes: number;
  instanceHours: number;
  peakInstances: number;
  segments: Segment[];
}

/**
 * How long a backlog takes at a steady rate per instance, with a fixed fleet or under the stack's
 * own rule (infra/scaling-rule.ts): the count the rule asks for at each backlog, reached at once on
 * the way up (the group is assumed warm; `eta` says what warming up adds) and held for
 * TARGET_TRACKING_SCALE_IN_MINUTES on the way down, as target tracking holds it.
 */
export function estimate(p: EstimateInput): Estimate {
  const wanted = (left: number) => (p.instances !== undefined ? p.instances : desiredCapacity(left, p.rule.target, p.rule.min, p.rule.max));
  let left = p.backlog;
  let t = 0;
  let hours = 0;
  let n = wanted(left);
  let lowSince: number | undefined;
  const segments: Segment[] = [];
  const note = () => {
    if (segments[segments.length - 1]?.instances !== n) segments.push({ at: t, instances: n, backlog: left });
  };
  while (left > 1e-9) {
    const want = wanted(left);
    if (want > n) {
      n = want;
      lowSince = undefined;
    } else if (want < n) {
      lowSince ??= t;
      if (t - lowSince >= TARGET_TRACKING_SCALE_IN_MINUTES) {
        n = want;
        lowSince = undefined;
      }
    } else {
      lowSince = undefined;
    }
    note();
    const rate = n * p.perInstance;
    if (rate <= 0) return { minutes: Infinity, instanceHours: Infinity, peakInstances: n, segments };
    let dt = left / rate;
    if (want < n) dt = Math.min(dt, lowSince! + TARGET_TRACKING_SCALE_IN_MINUTES - t);
    // With a fixed fleet or at the rule's floor nothing changes until the end; otherwise the next
    // change comes when the backlog falls to where the rule asks for one instance fewer.
    else if (p.instances === undefined && n > p.rule.min) dt = Math.min(dt, Math.max((left - (n - 1) * p.rule.target) / rate, 1e-6));
    left -= rate * dt;
    t += dt;
    hours += (n * dt) / 60;
  }
  return { minutes: t, instanceHours: hours, peakInstances: Math.max(0, ...segments.map((s) => s.instances)), segments };
}
