import { randomUUID } from "node:crypto";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { METRIC_DIMENSION, METRIC_PROCESSED, METRICS_NAMESPACE } from "../../worker/contract";
import { durationFlag, str } from "../args";
import { AwsFleet } from "../aws/fleet";
import { awsCall } from "../aws/call";
import type { Command, CommandContext } from "../command";
import { EXIT } from "../exit";
import { duration } from "../format";
import { pause, Redraw } from "../io";
import { atLeast, LogEvent, parseLevel } from "../log-lines";

/** The message attribute that marks a smoke message, valued with its id. */
export const SMOKE_ATTRIBUTE = "kiln-smoke";

export interface SmokeResult {
  ok: boolean;
  messageId: string;
  smokeId: string;
  seconds: number;
  /** How it is known: the worker's own line for this message id, or the processed metric. */
  evidence?: "log" | "metric";
  error?: string;
  detail: string;
}

/** The workers' lines about one message since it was sent: processed, or failed with an error. */
async function linesFor(ctx: CommandContext, messageId: string, since: number): Promise<LogEvent[]> {
  const out: LogEvent[] = [];
  for await (const e of ctx.fleet().logs({ since, messageIds: [messageId] }, ctx.io.signal)) out.push(e);
  return out;
}

/** Messages the stack's workers reported processed from `since` on (Kiln/Worker, a minute at a time). */
async function processedSince(fleet: AwsFleet, since: number): Promise<number> {
  const out = await awsCall("reading Kiln/Worker MessagesProcessed", () =>
    fleet.clients.cloudwatch.send(
      new GetMetricDataCommand({
        StartTime: new Date(Math.floor(since / 60_000) * 60_000),
        EndTime: new Date(Date.now() + 60_000),
        MetricDataQueries: [
          {
            Id: "processed",
            MetricStat: {
              Metric: { Namespace: METRICS_NAMESPACE, MetricName: METRIC_PROCESSED, Dimensions: [{ Name: METRIC_DIMENSION, Value: fleet.cfg.stack }] },
              Period: 60,
              Stat: "Sum",
            },
          },
        ],
      }),
    ),
  );
  const r = out.MetricDataResults?.[0];
  return (r?.Values ?? []).reduce((a, v, i) => (new Date(r!.Timestamps![i]).getTime() >= Math.floor(since / 60_000) * 60_000 ? a + v : a), 0);
}

export const smokeCommand: Command = {
  name: "smoke",
  summary: "send a marked message and wait until a worker processed it; non-zero on timeout",
  help: `usage: kiln smoke --stack NAME [--timeout 5m] [--body TEXT]

The check after every deploy: sends one message (body {"kiln":"smoke","id":...} or --body, with the
message attribute ${SMOKE_ATTRIBUTE}) and waits until a worker has processed it: the worker's own
"processed" line for its message id, in CloudWatch Logs or the local fleet's log. Those lines are
logged at debug; a stack logging at info or above (kiln:logLevel) does not log each message, so
there the Kiln/Worker MessagesProcessed metric rising after the send is the evidence instead (it
shows the fleet processes messages, not this one by name). A failure line for the message fails
the check at once. Your handler gets the body: give --body one it treats as a no-op.
exit: 0 processed, 3 failed or not processed within --timeout.`,
  flags: { timeout: { type: "string" }, body: { type: "string" } },
  async run(ctx) {
    const timeout = durationFlag(ctx.values, "timeout", { min: 1, max: 86_400 }) ?? 300;
    const fleet = ctx.fleet();
    const cfg = ctx.cfg();
    const smokeId = randomUUID();
    const sentAt = Date.now();
    const body = str(ctx.values, "body") ?? JSON.stringify({ kiln: "smoke", id: smokeId, sentAt: new Date(sentAt).toISOString() });
    const { url } = await fleet.queues();
    // The local fleet's workers log at debug whatever the stack says; on AWS the stack's level rules.
    const perMessageLines = fleet.kind === "local" || atLeast("debug", parseLevel(cfg.logLevel));
    // The metric counts a minute at a time: what this minute already holds is not our message.
    const baseline = !perMessageLines && fleet instanceof AwsFleet ? await processedSince(fleet, sentAt) : 0;
    const sent = await awsCall("sending the smoke message", () =>
      fleet.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageAttributes: { [SMOKE_ATTRIBUTE]: { DataType: "String", StringValue: smokeId } } })),
    );
    const messageId = sent.MessageId!;
    ctx.say(
      `${fleet.where}\nsent smoke message ${messageId}; waiting up to ${duration(timeout)} for ` +
        (perMessageLines ? "a worker's processed line for it" : `the processed metric (kiln:logLevel ${cfg.logLevel} does not log each message)`),
    );
    const screen = new Redraw(ctx.io.out);
    const since = sentAt - 60_000;
    let result: SmokeResult | undefined;
    while (!ctx.io.signal.aborted) {
      const seconds = (Date.now() - sentAt) / 1000;
      const lines = await linesFor(ctx, messageId, since);
      const failed = lines.filter((e) => e.err || e.level === "error" || /failed/.test(e.msg)).pop();
      if (lines.some((e) => e.msg === "processed")) {
        result = { ok: true, messageId, smokeId, seconds, evidence: "log", detail: `processed after ${duration(seconds)}: ${lines.find((e) => e.msg === "processed")!.source ?? "a worker"} logged it` };
      } else if (failed) {
        result = { ok: false, messageId, smokeId, seconds, evidence: "log", error: failed.err ?? failed.msg, detail: `a worker failed it after ${duration(seconds)}: ${failed.err ?? failed.msg}; it is retried and ends in the DLQ after kiln:maxReceiveCount (${cfg.maxReceiveCount}) receives` };
      } else if (!perMessageLines && fleet instanceof AwsFleet) {
        const n = (await processedSince(fleet, sentAt)) - baseline;
        if (n > 0) result = { ok: true, messageId, smokeId, seconds, evidence: "metric", detail: `the workers reported ${n} message(s) processed since the send, and no failure of it (metric evidence, not this message by name)` };
      }
      if (result) break;
      if (seconds >= timeout) {
        const g = await fleet.group().catch(() => undefined);
        result = {
          ok: false,
          messageId,
          smokeId,
          seconds,
          detail: `not processed within ${duration(timeout)}` + (g ? ` (${g.inService} in service, ${g.desired} desired${g.paused ? ", paused" : ""})` : "") + ": see kiln status and kiln logs --level warn",
        };
        break;
      }
      if (screen.tty && !ctx.g.json) screen.show(`  waiting ${duration(seconds)} of ${duration(timeout)}`);
      await pause(fleet.kind === "local" ? 500 : 3_000, ctx.io.signal);
    }
    if (!result) {
      ctx.json({ ok: false, messageId, smokeId, interrupted: true });
      ctx.say("interrupted before the smoke message was processed");
      return EXIT.INTERRUPTED;
    }
    ctx.json(result);
    ctx.say(`${result.ok ? "ok" : "FAILED"}: ${result.detail}`);
    return result.ok ? EXIT.OK : EXIT.CHECK_FAILED;
  },
};
