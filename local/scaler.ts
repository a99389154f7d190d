import { desiredCapacity } from "../infra/scaling-rule";

export interface ScalerSettings {
  target: number;
  min: number;
  max: number;
  scaleOutCooldownMs: number;
  scaleInCooldownMs: number;
}

/**
 * Why the desired count changed. "rule": target tracking on backlog per worker; "from-zero": the
 * step policy a stack allowed to sit at zero has, which starts exactly one worker when messages
 * arrive; "manual", "pause", "resume": an operator (`kiln scale`, `kiln pause`, `kiln resume`).
 */
export type ScalingCause = "rule" | "from-zero" | "manual" | "pause" | "resume";

export interface ScalingEvent {
  /** Milliseconds since the fleet started. */
  atMs: number;
  from: number;
  to: number;
  /** Visible messages the decision was made on. */
  visible: number;
  why: ScalingCause;
}

/**
 * The Auto Scaling group's part: the desired worker count, moved toward what the shared rule asks
 * for no faster than the stack's cooldowns allow. Scale-in waits a cooldown after any change, not
 * only after the last scale-in, so a backlog that dips while new workers pick it up cannot undo a
 * scale-out at once (in AWS the slow scale-in alarm does that job).
 */
export class Scaler {
  private current: number;
  private lastOut = -Infinity;
  private lastChange = -Infinity;
  readonly events: ScalingEvent[] = [];

  constructor(
    private readonly s: ScalerSettings,
    private readonly startedAt: number,
  ) {
    // A group is created at its minimum size.
    this.current = s.min;
  }

  get desired(): number {
    return this.current;
  }

  get settings(): ScalerSettings {
    return this.s;
  }

  /** What the rule alone asks for right now, before cooldowns. */
  wanted(visible: number): number {
    return desiredCapacity(visible, this.s.target, this.s.min, this.s.max);
  }

  /** Applies the rule to the visible backlog at `now`; returns the desired count. */
  decide(visible: number, now: number): number {
    const wanted = this.wanted(visible);
    if (this.current === 0 && wanted > 0) {
      // Target tracking divides by in-service workers, which is undefined at zero: the stack's step
      // policy starts one at once, and the rule takes over once it has warmed up.
      this.change(1, visible, now, "from-zero");
    } else if ((wanted > this.current && now - this.lastOut >= this.s.scaleOutCooldownMs) || (wanted < this.current && now - this.lastChange >= this.s.scaleInCooldownMs)) {
      this.change(wanted, visible, now, "rule");
    }
    return this.current;
  }

  /**
   * An operator's change (SetDesiredCapacity, a pause or a resume): applied at once, and the rule
   * waits a cooldown before it moves the count again, as AWS does after a manual change.
   */
  set(n: number, visible: number, now: number, why: Exclude<ScalingCause, "rule" | "from-zero">): void {
    if (n !== this.current) this.change(n, visible, now, why);
  }

  private change(to: number, visible: number, now: number, why: ScalingCause): void {
    this.events.push({ atMs: now - this.startedAt, from: this.current, to, visible, why });
    if (to > this.current) this.lastOut = now;
    this.lastChange = now;
    this.current = to;
  }
}

/** How the live view says a change: "scale out from zero: 0 → 1 worker (the step policy; backlog 200)". */
export function describeScaling(e: ScalingEvent, target: number): string {
  const workers = `${e.from} → ${e.to} worker${e.to === 1 ? "" : "s"}`;
  switch (e.why) {
    case "from-zero":
      return `scale out from zero: ${workers} (the stack's step policy starts one when messages arrive; backlog ${e.visible})`;
    case "rule":
      return `scale ${e.to > e.from ? "out" : "in"}: ${workers} (backlog ${e.visible}, ${target} per worker)`;
    case "manual":
      return `scaled by hand: ${workers} (kiln scale; the rule moves it again after a cooldown)`;
    case "pause":
      return `paused: ${workers}, draining (kiln pause; kiln resume starts them again)`;
    case "resume":
      return `resumed: ${workers} (kiln resume)`;
  }
}
