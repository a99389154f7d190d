import { durationFlag } from "../args";
import type { Command, CommandContext } from "../command";
import { CallFailed, EXIT } from "../exit";
import { backlog, OpsFleet, QueueStats } from "../fleet";
import { ago, count, duration, fields, perMinute, table } from "../format";
import { pause, Redraw } from "../io";

export interface StatusReport {
  where: string;
  kind: "aws" | "local";
  at: string;
  queue: QueueStats & { url: string };
  dlq: QueueStats & { url: string };
  throughput: Awaited<ReturnType<OpsFleet["throughput"]>>;
  eta: { messages: number; perMinute?: number; seconds?: number };
  group: Awaited<ReturnType<OpsFleet["group"]>>;
  alarms: Awaited<ReturnType<OpsFleet["alarms"]>>;
}

/** Everything `status` shows, read in parallel. */
export async function readStatus(fleet: OpsFleet): Promise<StatusReport> {
  // The queues first: when the stack is not there, that is the one thing to say.
  const queues = await fleet.queues();
  const [stats, throughput, group, alarms] = await Promise.all([fleet.queueStats(), fleet.throughput(), fleet.group(), fleet.alarms()]);
  const messages = backlog(stats.main);
  const rate = throughput.processed5 || throughput.processed15 || undefined;
  return {
    where: fleet.where,
    kind: fleet.kind,
    at: new Date().toISOString(),
    queue: { ...stats.main, url: queues.url },
    dlq: { ...stats.dlq, url: queues.dlqUrl },
    throughput,
    eta: { messages, perMinute: rate, seconds: messages === 0 ? 0 : rate ? (messages / rate) * 60 : undefined },
    group,
    alarms,
  };
}

function queueLine(q: QueueStats): string {
  return (
    `visible ${count(q.visible)}, in flight ${count(q.inFlight)}, delayed ${count(q.delayed)}` +
    (q.oldestAgeSeconds !== undefined ? `; oldest waited ${duration(q.oldestAgeSeconds)}` : "")
  );
}

export function renderStatus(r: StatusReport): string {
  const t = r.throughput;
  const g = r.group;
  const eta =
    r.eta.seconds === 0
      ? "nothing waiting"
      : r.eta.seconds === undefined
        ? `${count(r.eta.messages)} messages, nothing processed lately: no estimate`
        : `${duration(r.eta.seconds)} (${count(r.eta.messages)} messages at ${perMinute(r.eta.perMinute)})`;
  const lt = g.launchTemplate
    ? `; launch template ${g.launchTemplate.id} version ${g.launchTemplate.version}${g.launchTemplate.latest ? ` (latest ${g.launchTemplate.latest})` : ""}`
    : "";
  const lines = [
    r.where,
    "",
    fields([
      ["queue", queueLine(r.queue)],
      ["DLQ", queueLine(r.dlq)],
      ["processed", `${perMinute(t.processed5)} over 5 min, ${perMinute(t.processed15)} over 15 min; failed ${perMinute(t.failed15)} over 15 min`],
      ["", `from ${t.source}`],
      ["ETA", eta],
      ["instances", `${g.desired} desired, ${g.inService} in service, ${g.pending} pending, ${g.terminating} terminating (min ${g.min}, max ${g.max})${lt}`],
    ]),
  ];
  if (g.instances.length) {
    lines.push(
      "",
      table(
        ["INSTANCE", "STATE", "HEALTH", "VERSION", "TYPE", "ZONE", "UP"],
        g.instances.map((i) => [i.id, i.state, i.health, i.version, i.type, i.zone, i.since ? ago(i.since).replace(" ago", "") : undefined]),
      )
        .split("\n")
        .map((l) => "  " + l)
        .join("\n"),
    );
  }
  const extra: [string, string][] = [];
  if (g.paused) extra.push(["paused", `since ${g.paused.at || "now"}: desired held at 0, ${g.paused.suspended.join(", ")} suspended (kiln resume)`]);
  else if (g.suspended.length) extra.push(["suspended", g.suspended.join(", ")]);
  if (g.refresh) {
    const active = !["Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"].includes(g.refresh.status);
    extra.push([
      "refresh",
      `${g.refresh.status}${g.refresh.percentage !== undefined ? ` ${g.refresh.percentage}%` : ""}` +
        (g.refresh.instancesToUpdate !== undefined && active ? `, ${g.refresh.instancesToUpdate} instances to update` : "") +
        (g.refresh.started ? `, started ${ago(g.refresh.started)}` : "") +
        (g.refresh.reason ? `: ${g.refresh.reason}` : ""),
    ]);
  }
  extra.push(["alarms", r.alarms.length ? r.alarms.map((a) => a.name).join(", ") : "none in ALARM"]);
  lines.push("", fields(extra));
  for (const a of r.alarms) if (a.reason) lines.push(`    ${a.name}: ${a.reason}`);
  return lines.join("\n");
}

export const statusCommand: Command = {
  name: "status",
  summary: "queue and DLQ depth, throughput, ETA, instances, refresh, alarms",
  help: `usage: kiln status --stack NAME [--watch [--interval 5s]]

Queue and DLQ depth (visible, in flight, delayed), the oldest message's age, messages processed a
minute over 5 and 15 minutes (the workers' own counts, which stay true while producers add
messages, unlike two depth readings), the ETA, the instances (desired, in service, pending; each
with its health and launch template version), an instance refresh in progress and the stack's
alarms in ALARM. --watch redraws it until Ctrl-C (one JSON document a line with --json).`,
  flags: { watch: { type: "boolean" }, interval: { type: "string" } },
  async run(ctx: CommandContext) {
    const fleet = ctx.fleet();
    if (!ctx.values.watch) {
      const report = await readStatus(fleet);
      ctx.json(report);
      ctx.say(renderStatus(report));
      return EXIT.OK;
    }
    const every = (durationFlag(ctx.values, "interval", { min: 1, max: 3600 }) ?? (fleet.kind === "local" ? 2 : 5)) * 1000;
    const screen = new Redraw(ctx.io.out);
    let last = "";
    while (!ctx.io.signal.aborted) {
      try {
        const report = await readStatus(fleet);
        last = renderStatus(report);
        if (ctx.g.json) ctx.io.out.write(JSON.stringify(report) + "\n");
        else screen.show(`${last}\n\n(every ${every / 1000} s; Ctrl-C to stop)`);
      } catch (e) {
        // One failed reading (throttled, a network blip) is shown and the watch goes on.
        if (!(e instanceof CallFailed)) throw e;
        if (ctx.g.json) ctx.io.out.write(JSON.stringify({ at: new Date().toISOString(), error: e.message }) + "\n");
        else screen.show(`${last}\n\n${e.message}; trying again in ${every / 1000} s`);
      }
      await pause(every, ctx.io.signal);
    }
    return EXIT.OK;
  },
};
