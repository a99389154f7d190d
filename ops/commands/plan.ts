import { desiredCapacity } from "../../infra/scaling-rule";
import { num } from "../args";
import { AwsFleet } from "../aws/fleet";
import { stackHistory } from "../aws/metrics";
import { queueNameOf } from "../aws/stack-resources";
import type { Command, CommandContext } from "../command";
import { EXIT } from "../exit";
import { count, fields, money, perMinute } from "../format";
import { LocalOpsFleet } from "../local-fleet";
import { onDemandPrice } from "../prices";
import { renderWhatIf, whatIf } from "./eta";

/** What capacity planning reads of a period: measured, never assumed. */
export interface Usage {
  period: string;
  hours: number;
  peakBacklog: number;
  peakBacklogAt?: string;
  peakInstances: number;
  processed: number;
  instanceHours: number;
}

async function awsUsage(fleet: AwsFleet, days: number): Promise<Usage> {
  const q = await fleet.stackQueues();
  const h = await stackHistory(fleet.clients, { stack: fleet.cfg.stack, queueName: queueNameOf(q.url), groupName: fleet.names.groupName, days });
  const peak = h.visibleMax.reduce((best, p) => (p.v > best.v ? p : best), { t: 0, v: 0 });
  return {
    period: `the last ${days} days, hour by hour, from CloudWatch`,
    hours: days * 24,
    peakBacklog: peak.v,
    peakBacklogAt: peak.t ? new Date(peak.t).toISOString().slice(0, 16).replace("T", " ") + " UTC" : undefined,
    peakInstances: Math.max(0, ...h.inServiceMax.map((p) => p.v)),
    processed: h.processed.reduce((a, p) => a + p.v, 0),
    // Each hourly average of instances in service is that hour's instance-hours.
    instanceHours: h.inServiceAvg.reduce((a, p) => a + p.v, 0),
  };
}

async function localUsage(fleet: LocalOpsFleet): Promise<Usage> {
  const s = await fleet.status();
  const hours = (Date.now() - s.startedAt) / 3_600_000;
  return {
    period: `this local run so far (${Math.round(hours * 60)} min; the local fleet keeps no longer history)`,
    hours,
    peakBacklog: s.history.peakBacklog,
    peakInstances: s.history.peakWorkers,
    processed: s.processed,
    instanceHours: s.history.workerSeconds / 3600,
  };
}

export const planCommand: Command = {
  name: "plan",
  summary: "capacity plan from the last 30 days: peak backlog, rate per instance, cost, maxSize",
  help: `usage: kiln plan --stack NAME [--days 30] [--price USD]

Capacity planning from what the stack did: over the last --days days (CloudWatch, hour by hour) the
peak backlog, the most instances in service, messages processed, the rate one instance achieved
(processed / instance-hours) and the instance-hours and on-demand cost spent; then the peak backlog
again under the stack's scaling rule at that rate: how long it takes, what it costs, and how many
instances the rule would ask for without kiln:maxSize. On a local fleet it reads the run so far.`,
  flags: { days: { type: "string" }, price: { type: "string" } },
  async run(ctx: CommandContext) {
    const cfg = ctx.cfg();
    const days = num(ctx.values, "days", { min: 1, max: 455, integer: true }) ?? 30;
    const price = num(ctx.values, "price", { min: 0, max: 1000 });
    const fleet = ctx.fleet();
    const u = fleet instanceof AwsFleet ? await awsUsage(fleet, days) : await localUsage(fleet as LocalOpsFleet);
    const perInstance = u.instanceHours > 0 ? u.processed / (u.instanceHours * 60) : undefined;
    const p = onDemandPrice(ctx.g.region ?? cfg.region, cfg.instanceType, price);
    const spent = p ? u.instanceHours * p.usdPerHour : undefined;
    const uncapped = desiredCapacity(u.peakBacklog, cfg.backlogTarget, cfg.minSize, Number.MAX_SAFE_INTEGER);
    const peak = perInstance && u.peakBacklog > 0
      ? whatIf(ctx, { backlog: u.peakBacklog, backlogFrom: "the period's peak", perInstance, rateFrom: "the period's measured rate", price })
      : undefined;
    ctx.json({ usage: u, perInstance, price: p, spentUsd: spent, ruleAtPeakUncapped: uncapped, maxSize: cfg.maxSize, peak });
    const rows: [string, string][] = [
      ["peak backlog", `${count(u.peakBacklog)} messages${u.peakBacklogAt ? ` (${u.peakBacklogAt})` : ""}`],
      ["peak instances", `${u.peakInstances} in service (kiln:maxSize ${cfg.maxSize})`],
      ["processed", `${count(u.processed)} messages${u.hours >= 48 ? ` (${count(u.processed / (u.hours / 24))} a day)` : ""}`],
      ["rate", perInstance ? `${perMinute(perInstance)} per instance (processed / instance-minutes in service)` : "nothing processed: no rate"],
      [
        "instance-hours",
        `${u.instanceHours.toFixed(1)} h of ${cfg.instanceType}` + (spent !== undefined ? `, ${money(spent)} on demand (${p!.from})` : ", no price known: --price"),
      ],
    ];
    if (spent !== undefined && u.hours >= 24) rows.push(["a month of this", money((spent / u.hours) * 730)]);
    rows.push([
      "the rule at the peak",
      `${uncapped} instance${uncapped === 1 ? "" : "s"} (${count(u.peakBacklog)} / ${count(cfg.backlogTarget)} per instance)` +
        (uncapped > cfg.maxSize ? `: kiln:maxSize ${cfg.maxSize} held it to ${cfg.maxSize}, so the peak waited longer than kiln:acceptableLatency (${cfg.acceptableLatency} s)` : ", within kiln:maxSize"),
    ]);
    ctx.say(`capacity plan (stack ${cfg.stack}: ${u.period})\n${fields(rows)}`);
    if (peak) ctx.say("\nthe peak again, under the rule at the measured rate:\n" + renderWhatIf(peak, cfg).split("\n").slice(1).join("\n"));
    return EXIT.OK;
  },
};
