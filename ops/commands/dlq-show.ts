import type { Message } from "@aws-sdk/client-sqs";
import { num, oneOf } from "../args";
import type { Command, CommandContext } from "../command";
import { EXIT } from "../exit";
import { ago, count, table } from "../format";
import type { LogEvent } from "../log-lines";
import { peekMessages } from "../queue/peek";

export interface DeadLetter {
  messageId: string;
  body: string;
  /** Receives before this look (the look itself is one more). */
  receives: number;
  sentAt?: string;
  firstReceivedAt?: string;
  /** The workers' last failure line for this message, from their logs. */
  lastError?: string;
  lastErrorAt?: string;
  attributes: Record<string, string>;
}

const MS = (v: string | undefined) => (v && /^\d+$/.test(v) ? new Date(Number(v)).toISOString() : undefined);

/** The last failure line per message id, from the workers' logs since the oldest message was sent. */
export async function lastErrors(ctx: CommandContext, ids: string[], since: number): Promise<Map<string, LogEvent>> {
  const last = new Map<string, LogEvent>();
  if (!ids.length) return last;
  // CloudWatch filter patterns are limited in length: twenty ids a query. The local log is read once.
  const chunk = ctx.fleet().kind === "local" ? ids.length : 20;
  for (let i = 0; i < ids.length; i += chunk) {
    for await (const e of ctx.fleet().logs({ since, level: "warn", messageIds: ids.slice(i, i + chunk) }, ctx.io.signal)) {
      if (!e.messageId || !(e.err || e.level === "error" || e.level === "warn")) continue;
      const prev = last.get(e.messageId);
      if (!prev || prev.time <= e.time) last.set(e.messageId, e);
    }
  }
  return last;
}

export function deadLetters(messages: Message[], errors: Map<string, LogEvent>): DeadLetter[] {
  return messages.map((m) => {
    const e = errors.get(m.MessageId!);
    return {
      messageId: m.MessageId!,
      body: m.Body ?? "",
      receives: Math.max(0, Number(m.Attributes?.ApproximateReceiveCount ?? 1) - 1),
      sentAt: MS(m.Attributes?.SentTimestamp),
      firstReceivedAt: MS(m.Attributes?.ApproximateFirstReceiveTimestamp),
      lastError: e ? e.err ?? e.msg : undefined,
      lastErrorAt: e ? new Date(e.time).toISOString() : undefined,
      attributes: Object.fromEntries(Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? `(${v.DataType})`])),
    };
  });
}

const short = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + "…" : s).replace(/\s+/g, " ");

export const dlqShowCommand: Command = {
  name: "dlq show",
  summary: "dead letters: bodies, receives, first receive, each one's last error from the logs",
  help: `usage: kiln dlq show --stack NAME [-n 10] [--group-by error]

The messages in the dead-letter queue: id, receives before this look, when it was sent and first
received, its last error (the workers' last failure line for that message id, from CloudWatch Logs
or the local fleet's log) and its body. --group-by error counts them by last error instead.
Nothing is deleted: each message is received, then made visible again (a look that is killed
leaves them hidden 30 s at most). Each look adds one to the messages' receive counts.`,
  flags: { n: { type: "string", short: "n" }, "group-by": { type: "string" } },
  async run(ctx) {
    const max = num(ctx.values, "n", { min: 1, max: 1000, integer: true }) ?? 10;
    const groupBy = oneOf(ctx.values, "group-by", ["error"] as const);
    const fleet = ctx.fleet();
    const { dlqUrl } = await fleet.queues();
    const stats = await fleet.queueStats();
    const { messages, unhidden } = await peekMessages(fleet.sqs, dlqUrl, max, ctx.io.signal);
    const sent = messages.map((m) => Number(m.Attributes?.SentTimestamp ?? Date.now()));
    const errors = await lastErrors(ctx, messages.map((m) => m.MessageId!), Math.min(Date.now(), ...sent) - 60_000);
    const letters = deadLetters(messages, errors);
    const groups = new Map<string, DeadLetter[]>();
    for (const l of letters) groups.set(l.lastError ?? "(no error line found in the logs)", [...(groups.get(l.lastError ?? "(no error line found in the logs)") ?? []), l]);

    ctx.json({ where: fleet.where, dlq: { url: dlqUrl, ...stats.dlq }, shown: letters.length, messages: letters, ...(groupBy ? { byError: Object.fromEntries([...groups].map(([k, v]) => [k, v.map((l) => l.messageId)])) } : {}) });
    ctx.say(`${fleet.where}\ndead-letter queue: ${count(stats.dlq.visible)} visible, ${count(stats.dlq.inFlight)} in flight; showing ${letters.length}\n`);
    if (!letters.length) {
      ctx.say("the dead-letter queue is empty");
    } else if (groupBy) {
      const rows = [...groups].sort((a, b) => b[1].length - a[1].length).map(([error, ls]) => [ls.length, short(error, 80), ls.slice(0, 3).map((l) => l.messageId).join(" ")]);
      ctx.say(table(["COUNT", "LAST ERROR", "EXAMPLES"], rows));
    } else {
      ctx.say(
        table(
          ["MESSAGE ID", "RECEIVES", "SENT", "FIRST RECEIVED", "LAST ERROR", "BODY"],
          letters.map((l) => [l.messageId, l.receives, ago(l.sentAt), ago(l.firstReceivedAt), l.lastError ? short(l.lastError, 50) : undefined, short(l.body, 60)]),
        ),
      );
    }
    if (!unhidden) ctx.say(`\nsome messages could not be made visible again at once: they show again within 30 s`);
    return EXIT.OK;
  },
};
