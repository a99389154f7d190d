import type { Command } from "../command";
import { EXIT } from "../exit";

export const pauseCommand: Command = {
  name: "pause",
  summary: "emergency stop: no more messages taken, workers drain, messages wait in the queue",
  help: `usage: kiln pause --stack NAME

The runbook's emergency stop, without losing a message: the group's scaling is suspended
(AlarmNotification, ScheduledActions) and its minimum and desired capacity set to 0, so every
instance drains through the terminate lifecycle hook (in-flight messages finish or go back) and
nothing consumes the queue; producers may go on sending, messages wait (the oldest-message alarm
will fire). What it changed is recorded on the group (tag kiln:paused) for \`kiln resume\`. Pulumi
owns minSize and the suspended processes: a \`pulumi up\` that refreshes or changes the group ends
the pause, as the command says. Locally: the fleet's rule stops and its workers drain.`,
  flags: {},
  async run(ctx) {
    const fleet = ctx.fleet();
    const r = await fleet.pause();
    ctx.json(r);
    ctx.say(
      `${fleet.where}\n` +
        (r.already
          ? `already paused since ${r.record.at || "earlier"}`
          : `paused: desired ${r.record.desired} → 0, minimum ${r.record.min} → 0; the workers drain and the queue keeps every message`) +
        `\n${r.note}`,
    );
    return EXIT.OK;
  },
};

export const resumeCommand: Command = {
  name: "resume",
  summary: "undo pause: restore the minimum and desired capacity and the backlog scaling",
  help: `usage: kiln resume --stack NAME

Puts back what pause changed: the minimum and desired capacity recorded on the group, and the
processes pause suspended; the backlog rule then scales to what the queue needs.`,
  flags: {},
  async run(ctx) {
    const fleet = ctx.fleet();
    const r = await fleet.resume();
    ctx.json(r);
    ctx.say(`${fleet.where}\n${r.wasPaused ? `resumed: desired ${r.desired}, minimum ${r.min}; ${r.note}` : r.note}`);
    return EXIT.OK;
  },
};
