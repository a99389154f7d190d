import { CancelInstanceRefreshCommand, RollbackInstanceRefreshCommand } from "@aws-sdk/client-auto-scaling";
import { recordAmiId } from "../../ami/publish";
import { stackImages } from "../../ami/prune";
import { str } from "../args";
import { awsCall } from "../aws/call";
import { AwsFleet } from "../aws/fleet";
import { REFRESH_ACTIVE } from "../aws/group";
import { templateVersion } from "../aws/template";
import type { Command, CommandContext } from "../command";
import { CallFailed, EXIT, UsageError } from "../exit";
import { ago, fields } from "../format";

function awsOnly(ctx: CommandContext): AwsFleet {
  const fleet = ctx.fleet();
  if (!(fleet instanceof AwsFleet)) {
    throw new UsageError("the local fleet runs this checkout's worker: there is no rollout to follow or undo (restart npm run local to run changed code; --aws for the deployed stack)");
  }
  return fleet;
}

export const rolloutStatusCommand: Command = {
  name: "rollout status",
  summary: "the instance refresh: progress, instances on the new version, image vs kiln:amiId",
  help: `usage: kiln rollout status --stack NAME

The group's latest instance refresh (status, percentage, instances still to update), how many
instances run the launch template's newest version, and whether the image the template launches is
the stack file's kiln:amiId (if not, \`pulumi up\` has not been run since the last bake).`,
  flags: {},
  async run(ctx) {
    const fleet = awsOnly(ctx);
    const g = await fleet.group();
    const lt = g.launchTemplate;
    const latest = lt ? await templateVersion(fleet.clients, lt.id, lt.latest ?? "$Latest") : undefined;
    const onLatest = g.instances.filter((i) => i.version !== undefined && i.version === String(latest?.version)).length;
    const amiId = ctx.cfg().amiId;
    const r = g.refresh;
    ctx.json({ refresh: r ?? null, launchTemplate: lt, instances: g.instances.length, onLatest, image: latest?.imageId, stackAmiId: amiId });
    const rows: [string, string][] = [
      ["refresh", r ? `${r.status}${r.percentage !== undefined ? ` ${r.percentage}%` : ""}${r.instancesToUpdate !== undefined ? `, ${r.instancesToUpdate} to update` : ""}${r.started ? `, started ${ago(r.started)}` : ""}${r.reason ? `: ${r.reason}` : ""}` : "none yet"],
      ["instances", `${onLatest} of ${g.instances.length} on launch template version ${latest?.version ?? "?"} (the newest)`],
      ["image", `${latest?.imageId ?? "?"}` + (amiId && latest?.imageId && amiId !== latest.imageId ? `; Pulumi.${ctx.g.stack}.yaml has kiln:amiId ${amiId}: run pulumi up --stack ${ctx.g.stack} to roll onto it` : amiId ? " (kiln:amiId)" : "")],
    ];
    ctx.say(`${fleet.where}\n${fields(rows)}`);
    return EXIT.OK;
  },
};

export const rolloutCancelCommand: Command = {
  name: "rollout cancel",
  summary: "stop the instance refresh in progress (replaced instances stay replaced)",
  help: `usage: kiln rollout cancel --stack NAME

Cancels the instance refresh in progress (CancelInstanceRefresh). Instances it already replaced keep
the new launch template version; the rest keep theirs. To go back to the previous version instead,
use rollout rollback.`,
  flags: {},
  async run(ctx) {
    const fleet = awsOnly(ctx);
    const r = (await fleet.group()).refresh;
    if (!r || !REFRESH_ACTIVE.includes(r.status)) {
      ctx.json({ cancelled: false, refresh: r ?? null });
      ctx.say(`no instance refresh in progress${r ? ` (the latest is ${r.status})` : ""}: nothing to cancel`);
      return EXIT.OK;
    }
    await awsCall("cancelling the instance refresh", () => fleet.clients.autoscaling.send(new CancelInstanceRefreshCommand({ AutoScalingGroupName: fleet.names.groupName })));
    ctx.json({ cancelled: true, refresh: r.id });
    ctx.say(`cancelling instance refresh ${r.id} (${r.percentage ?? 0}% done): replaced instances stay on the new version`);
    return EXIT.OK;
  },
};

export const rolloutRollbackCommand: Command = {
  name: "rollout rollback",
  summary: "roll back: undo the refresh in progress, or put the previous image in the stack file",
  help: `usage: kiln rollout rollback --stack NAME [--to AMI]

With an instance refresh in progress: RollbackInstanceRefresh, which replaces the instances it
already updated with the previous launch template version. Otherwise the stack goes back to the
previous image: the newest of the stack's baked images (tag kiln:stack) older than kiln:amiId, or
--to AMI, is written to Pulumi.STACK.yaml as kiln:amiId (comments kept); \`pulumi up\` then rolls the
fleet onto it with an instance refresh.`,
  flags: { to: { type: "string" } },
  async run(ctx) {
    const fleet = awsOnly(ctx);
    const r = (await fleet.group()).refresh;
    if (r && ["Pending", "InProgress"].includes(r.status) && !ctx.values.to) {
      await awsCall("rolling back the instance refresh", () => fleet.clients.autoscaling.send(new RollbackInstanceRefreshCommand({ AutoScalingGroupName: fleet.names.groupName })));
      ctx.json({ rolledBack: "refresh", refresh: r.id });
      ctx.say(`rolling back instance refresh ${r.id}: the instances it replaced go back to the previous launch template version (kiln rollout status follows it)`);
      return EXIT.OK;
    }
    const cfg = ctx.cfg();
    let target = str(ctx.values, "to");
    if (!target) {
      let images;
      try {
        images = await stackImages(fleet.clients.ec2, cfg.stack, [{ Name: "state", Values: ["available"] }], "rollout");
      } catch (e) {
        throw new CallFailed(`listing the stack's images failed: ${(e as Error).message}`);
      }
      const current = images.find((i) => i.ImageId === cfg.amiId);
      const older = images.filter((i) => i.ImageId !== cfg.amiId && (!current || (i.CreationDate ?? "") < (current.CreationDate ?? "")));
      target = older[0]?.ImageId;
      if (!target) {
        throw new UsageError(`no image of stack ${cfg.stack} older than kiln:amiId ${cfg.amiId || "(unset)"} is left (the bake keeps kiln:bake.keep): name one with --to ami-...`);
      }
    }
    const { file, previous } = recordAmiId(ctx.g.stackDir, cfg.stack, target);
    ctx.json({ rolledBack: "amiId", from: previous ?? null, to: target, file });
    ctx.say(`${file}: kiln:amiId ${previous ?? "(unset)"} → ${target}\nrun pulumi up --stack ${cfg.stack} to roll the fleet back onto it (an instance refresh, ${cfg.refreshMinHealthyPercentage}% kept in service)`);
    return EXIT.OK;
  },
};
