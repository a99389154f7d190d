import { desiredCapacity } from "../infra/scaling-rule";

export interface ScalerSettings {
  target: number;
  min: number;
  max: number;
  scaleOutCooldownMs: number;
  scaleInCooldownMs: number;
}

export interface ScalingEvent {
  /** Milliseconds since the fleet started. */
  atMs: number;
  from: number;
  to: number;
  /** Visible messages the decision was made on. */
  visible: number;
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

  /** What the rule alone asks for right now, before cooldowns. */
  wanted(visible: number): number {
    return desiredCapacity(visible, this.s.target, this.s.min, this.s.max);
  }

  /** Applies the rule to the visible backlog at `now`; returns the desired count. */
  decide(visible: number, now: number): number {
    const wanted = this.wanted(visible);
    // From zero there is no instance to warm up: the stack's step policy starts one at once.
    const mayGrow = this.current === 0 || now - this.lastOut >= this.s.scaleOutCooldownMs;
    const mayShrink = now - this.lastChange >= this.s.scaleInCooldownMs;
    if ((wanted > this.current && mayGrow) || (wanted < this.current && mayShrink)) {
      this.events.push({ atMs: now - this.startedAt, from: this.current, to: wanted, visible });
      if (wanted > this.current) this.lastOut = now;
      this.lastChange = now;
      this.current = wanted;
    }
    return this.current;
  }
}
