import { num } from "../args";
import type { Command, CommandContext } from "../command";
import { EXIT } from "../exit";
import { Estimate, estimate } from "../estimate";
import { backlog } from "../fleet";
import { count, fields, longDuration, money, perMinute } from "../format";
import { onDemandPrice, Price } from "../prices";

export interface WhatIf {
  backlog: number;
  backlogFrom: string;
  perInstance: number;
  rateFrom: string;
  instances?: number;
  rule: { target: number; min: number; max: number };
  estimate: Estimate;
  instanceType: string;
  price?: Price;
  costUsd?: number;
  /** The group's instances in service now, when read: the rule's count is reached from there. */
  inServiceNow?: number;
}

/** The measured rate per instance (the last 15 minutes' count over the instances in service), if any. */
export async function measuredRate(ctx: CommandContext): Promise<{ perInstance: number; from: string } | undefined> {
  const fleet = ctx.fleet();
  const [t, g] = await Promise.all([fleet.throughput(), fleet.group()]);
  const rate = t.processed15 || t.processed5;
  if (!rate || g.inService === 0) return undefined;
  return { perInstance: rate / g.inService, from: `measured: ${perMinute(rate)} over 15 min on ${g.inService} ${fleet.kind === "local" ? "worker" : "instance"}${g.inService === 1 ? "" : "s"} (${fleet.kind})` };
}

export function whatIf(ctx: CommandContext, p: { backlog: number; backlogFrom: string; perInstance: number; rateFrom: string; instances?: number; price?: number; inServiceNow?: number }): WhatIf {
  const cfg = ctx.cfg();
  const rule = { target: cfg.backlogTarget, min: cfg.minSize, max: cfg.maxSize };
  const e = estimate({ backlog: p.backlog, perInstance: p.perInstance, instances: p.instances, rule });
  const price = onDemandPrice(ctx.g.region ?? cfg.region, cfg.instanceType, p.price);
  return { ...p, rule, estimate: e, instanceType: cfg.instanceType, price, costUsd: price && Number.isFinite(e.instanceHours) ? e.instanceHours * price.usdPerHour : undefined };
}

export function renderWhatIf(w: WhatIf, cfg: { stack: string; scaleOutCooldown: number; instanceWarmup: number }): string {
  const e = w.estimate;
  const fleet =
    w.instances !== undefined
      ? `${w.instances} instance${w.instances === 1 ? "" : "s"} (--instances)`
      : `the stack's rule (${count(w.rule.target)} messages per instance, ${w.rule.min} to ${w.rule.max} instances): ` +
        e.segments.map((s, i) => (i === 0 ? `${s.instances} instance${s.instances === 1 ? "" : "s"}` : `${s.instances} from ${count(Math.round(s.backlog))} left`)).join(", then ");
  const rows: [string, string][] = [
    ["backlog", `${count(w.backlog)} messages (${w.backlogFrom})`],
    ["rate", `${perMinute(w.perInstance)} per instance (${w.rateFrom})`],
    ["fleet", fleet],
    ["done in", Number.isFinite(e.minutes) ? longDuration(e.minutes * 60) : "never: nothing would process it"],
    [
      "cost",
      Number.isFinite(e.instanceHours)
        ? `${e.instanceHours.toFixed(1)} instance-hours of ${w.instanceType}` +
          (w.costUsd !== undefined ? `, ${money(w.costUsd)} on demand at $${w.price!.usdPerHour}/h (${w.price!.from})` : `; no price for ${w.instanceType} here: give --price USD_PER_HOUR`)
        : "-",
    ],
  ];
  if (w.instances === undefined && w.inServiceNow !== undefined && w.inServiceNow < e.peakInstances) {
    rows.push([
      "warm-up",
      `${w.inServiceNow} in service now: target tracking adds instances after about 3 minutes of high backlog, each serving after ` +
        `kiln:scaleOutCooldown (${cfg.scaleOutCooldown} s) to kiln:instanceWarmup (${cfg.instanceWarmup} s); the estimate assumes the fleet is already there`,
    ]);
  }
  return `what if (stack ${cfg.stack})\n${fields(rows)}`;
}

export const etaCommand: Command = {
  name: "eta",
  summary: "how long a backlog takes, instance-hours and cost, with the stack's scaling rule",
  help: `usage: kiln eta --stack NAME [--backlog N] [--rate R] [--instances N] [--price USD]

How long a backlog takes and what it costs. Without --instances the stack's own scaling rule
(infra/scaling-rule.ts: kiln:acceptableLatency / kiln:avgProcessingMs messages per instance, within
kiln:minSize and kiln:maxSize) decides how many instances work on it, and target tracking's 15
minutes of low backlog before a scale-in are kept; with --instances N, N instances do.

  --backlog N      messages to process (default: what the queue holds now)
  --rate R         messages a minute one instance processes (default: measured over the last 15
                   minutes, else 60,000 / kiln:avgProcessingMs)
  --instances N    a fixed fleet instead of the rule
  --price USD      on-demand dollars an hour of the stack's instance type (default: kiln's small
                   table of list prices, see docs/ops.md)

Given --backlog and --rate it needs no AWS access: e.g. the seeds' backlog on one t3.medium,
kiln eta --stack prod --backlog 256196 --rate 122 --instances 1.`,
  flags: { backlog: { type: "string" }, rate: { type: "string" }, instances: { type: "string" }, price: { type: "string" } },
  async run(ctx) {
    const cfg = ctx.cfg();
    let n = num(ctx.values, "backlog", { min: 0, max: 1e12, integer: true });
    let rate = num(ctx.values, "rate", { min: 0.001, max: 1e9 });
    const instances = num(ctx.values, "instances", { min: 1, max: 100_000, integer: true });
    const price = num(ctx.values, "price", { min: 0, max: 1000 });
    let backlogFrom = "--backlog";
    let rateFrom = "--rate";
    let inServiceNow: number | undefined;
    if (n === undefined) {
      const stats = await ctx.fleet().queueStats();
      n = backlog(stats.main);
      backlogFrom = `in the queue now: visible + in flight + delayed, ${ctx.fleet().kind}`;
    }
    if (rate === undefined) {
      const measured = await measuredRate(ctx);
      rate = measured?.perInstance ?? 60_000 / cfg.avgProcessingMs;
      rateFrom = measured?.from ?? `60,000 / kiln:avgProcessingMs ${cfg.avgProcessingMs}: nothing measured lately`;
    }
    if (ctx.values.backlog === undefined || ctx.values.rate === undefined) inServiceNow = (await ctx.fleet().group()).inService;
    const w = whatIf(ctx, { backlog: n, backlogFrom, perInstance: rate, rateFrom, instances, price, inServiceNow });
    ctx.json({ ...w, estimate: { ...w.estimate, hours: w.estimate.minutes / 60 } });
    ctx.say(renderWhatIf(w, cfg));
    return EXIT.OK;
  },
};
