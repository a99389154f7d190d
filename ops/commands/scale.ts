import { desiredCapacity } from "../../infra/scaling-rule";
import { num } from "../args";
import type { Command } from "../command";
import { EXIT, UsageError } from "../exit";

export const scaleCommand: Command = {
  name: "scale",
  summary: "set the desired number of instances now (the backlog rule moves it again later)",
  help: `usage: kiln scale --stack NAME --desired N

Sets the group's desired capacity at once (SetDesiredCapacity, ignoring the cooldown), within its
minimum and maximum: to force capacity while scale-out is not happening. The backlog policy keeps
running and moves the count back to what the backlog needs at its next evaluation (target tracking:
within minutes for a scale-out, after 15 minutes of low backlog for a scale-in). To hold the fleet
still, pause it; to change the bounds, set kiln:minSize / kiln:maxSize and run pulumi up.`,
  flags: { desired: { type: "string" } },
  async run(ctx) {
    const n = num(ctx.values, "desired", { min: 0, max: 10_000, integer: true });
    if (n === undefined) throw new UsageError("--desired N is required: how many instances");
    const fleet = ctx.fleet();
    const before = await fleet.group();
    await fleet.setDesired(n);
    const visible = (await fleet.queueStats()).main.visible;
    const cfg = ctx.cfg();
    const rule = desiredCapacity(visible, cfg.backlogTarget, before.min, before.max);
    ctx.json({ from: before.desired, to: n, ruleWouldAsk: rule, visible });
    ctx.say(
      `${fleet.where}\ndesired ${before.desired} → ${n}` +
        (rule !== n ? `\nthe backlog rule asks for ${rule} (${visible} visible, ${cfg.backlogTarget} per instance) and moves it there at its next evaluation` : ""),
    );
    return EXIT.OK;
  },
};
