import { AwsFleet } from "../aws/fleet";
import { Check, check, environmentDrift, imageFreshness, scalingActivities, vcpuQuota } from "../aws/checks";
import type { Command, CommandContext } from "../command";
import { EXIT } from "../exit";
import { formatLogEvent, LogEvent } from "../log-lines";
import { readStatus, renderStatus, StatusReport } from "./status";

const MARK = { ok: "ok  ", warn: "WARN", fail: "FAIL", unknown: "??  " } as const;

/** Judgements on what status read: the alarms' questions, asked of the figures directly. */
function statusChecks(r: StatusReport, cfg: { acceptableLatency: number }, speed = 1): Check[] {
  const checks: Check[] = [];
  const waiting = r.queue.visible + r.queue.delayed;
  checks.push(
    r.group.paused
      ? { name: "intake", status: "warn", detail: `paused since ${r.group.paused.at || "earlier"}: nothing consumes the queue (kiln resume)` }
      : waiting > 0 && r.group.inService === 0
        ? { name: "intake", status: "fail", detail: `${waiting} messages wait and no instance is in service (see scaling activities below)` }
        : { name: "intake", status: "ok", detail: `${r.group.inService} in service for ${waiting} waiting` },
  );
  const latency = cfg.acceptableLatency / speed;
  const oldest = r.queue.oldestAgeSeconds;
  checks.push(
    oldest !== undefined && oldest > latency
      ? { name: "latency", status: "warn", detail: `the oldest message has waited ${Math.round(oldest)} s, above kiln:acceptableLatency (${Math.round(latency)} s)` }
      : { name: "latency", status: "ok", detail: oldest === undefined ? "no oldest-message age reported" : `oldest message ${Math.round(oldest)} s` },
  );
  const dead = r.dlq.visible + r.dlq.inFlight;
  checks.push(dead ? { name: "dead letters", status: "warn", detail: `${dead} in the DLQ: kiln dlq show --group-by error, fix, kiln dlq redrive` } : { name: "dead letters", status: "ok", detail: "the DLQ is empty" });
  if (r.alarms.length) checks.push({ name: "alarms", status: "warn", detail: r.alarms.map((a) => `${a.name}${a.reason ? ` (${a.reason})` : ""}`).join("; ") });
  if (r.group.refresh && ["Failed", "RollbackFailed"].includes(r.group.refresh.status)) {
    checks.push({ name: "rollout", status: "fail", detail: `the latest instance refresh ${r.group.refresh.status}${r.group.refresh.reason ? `: ${r.group.refresh.reason}` : ""}` });
  }
  return checks;
}

async function recentErrors(ctx: CommandContext): Promise<{ check: Check; lines: LogEvent[] }> {
  const lines: LogEvent[] = [];
  try {
    for await (const e of ctx.fleet().logs({ since: Date.now() - 3_600_000, level: "error", limit: 20 }, ctx.io.signal)) lines.push(e);
  } catch (e) {
    return { check: { name: "worker errors", status: "unknown", detail: (e as Error).message }, lines };
  }
  return {
    check: lines.length
      ? { name: "worker errors", status: "warn", detail: `${lines.length}${lines.length === 20 ? " or more" : ""} error lines in the last hour (below; kiln logs --level error)` }
      : { name: "worker errors", status: "ok", detail: "no error lines in the last hour" },
    lines,
  };
}

export const doctorCommand: Command = {
  name: "doctor",
  summary: "one report for a ticket: status plus scaling failures, vCPU quota, drift, image age, errors",
  help: `usage: kiln doctor --stack NAME

Everything status shows, judged, plus: failed scaling activities of the last 24 hours; the EC2 vCPU
quota (Service Quotas) against what kiln:maxSize instances need, beside what else runs; drift
between the SSM parameters and the digest the launch template carries (a value changed outside
Pulumi); the image's age, whether kiln:amiId is deployed and whether a newer base image exists;
the workers' error lines of the last hour. One report an operator can attach to a ticket.
exit: 0 nothing failed (warnings allowed), 3 a check failed.`,
  flags: {},
  async run(ctx) {
    const fleet = ctx.fleet();
    const cfg = ctx.cfg();
    const report = await readStatus(fleet);
    const checks = statusChecks(report, cfg, report.group.speed ?? 1);
    if (fleet instanceof AwsFleet) {
      checks.push(
        ...(await Promise.all([
          check("scaling activities", () => scalingActivities(fleet.clients, fleet.names.groupName)),
          check("vCPU quota", () => vcpuQuota(fleet.clients, cfg, fleet.names.groupName)),
          check("environment drift", () => environmentDrift(fleet)),
          check("image", () => imageFreshness(fleet)),
        ])),
      );
    }
    const errors = await recentErrors(ctx);
    checks.push(errors.check);
    const failed = checks.filter((c) => c.status === "fail").length;
    const warned = checks.filter((c) => c.status === "warn").length;
    ctx.json({ ok: failed === 0, checks, status: report, recentErrors: errors.lines });
    ctx.say(
      [
        renderStatus(report),
        "",
        "checks",
        ...checks.map((c) => `  ${MARK[c.status]}  ${c.name.padEnd(19)}${c.detail}`),
        ...(errors.lines.length ? ["", "recent errors", ...errors.lines.slice(-10).map((e) => "  " + formatLogEvent(e))] : []),
        "",
        `${failed ? `${failed} failed` : "nothing failed"}, ${warned} warning${warned === 1 ? "" : "s"} (kiln ${process.env.npm_package_version ?? ""} doctor at ${report.at})`,
      ].join("\n"),
    );
    return failed ? EXIT.CHECK_FAILED : EXIT.OK;
  },
};
