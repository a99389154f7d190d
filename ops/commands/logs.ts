import { durationFlag, num, str } from "../args";
import type { Command } from "../command";
import { EXIT, UsageError } from "../exit";
import { formatLogEvent, parseLevel } from "../log-lines";

export const logsCommand: Command = {
  name: "logs",
  summary: "the workers' log lines: by level, time, message id or instance; --follow",
  help: `usage: kiln logs --stack NAME [--since 1h] [--level warn] [--message-id ID] [--instance ID] [-n 200] [--follow]

The workers' JSON log lines, from CloudWatch Logs (/kiln/STACK/worker, a stream per instance) or
the local fleet's log file, oldest first: time, level, instance (or local worker), message and the
message id and error where the line has them. --follow keeps printing new lines until Ctrl-C
(CloudWatch is asked every 2 s). --json prints each line's own fields, one JSON object a line.`,
  flags: {
    since: { type: "string" },
    level: { type: "string" },
    "message-id": { type: "string", multiple: true },
    instance: { type: "string" },
    n: { type: "string", short: "n" },
    follow: { type: "boolean", short: "f" },
  },
  async run(ctx) {
    const since = durationFlag(ctx.values, "since", { min: 1 }) ?? 3600;
    const rawLevel = str(ctx.values, "level");
    const level = rawLevel === undefined ? undefined : parseLevel(rawLevel);
    if (rawLevel !== undefined && !level) throw new UsageError(`--level must be one of trace, debug, info, warn, error, fatal (got ${JSON.stringify(rawLevel)})`);
    const ids = ctx.values["message-id"] as string[] | undefined;
    const follow = Boolean(ctx.values.follow);
    const limit = follow ? undefined : num(ctx.values, "n", { min: 1, max: 100_000, integer: true }) ?? 200;
    const fleet = ctx.fleet();
    if (!ctx.g.json) ctx.io.err.write(`${fleet.where}: lines of the last ${Math.round(since / 60)} min${level ? ` at ${level} or above` : ""}${follow ? ", following (Ctrl-C stops)" : ""}\n`);
    let shown = 0;
    for await (const e of fleet.logs({ since: Date.now() - since * 1000, level, messageIds: ids, instance: str(ctx.values, "instance"), follow, limit }, ctx.io.signal)) {
      shown++;
      ctx.io.out.write((ctx.g.json ? JSON.stringify({ time: new Date(e.time).toISOString(), level: e.level, msg: e.msg, messageId: e.messageId, err: e.err, source: e.source, ...e.fields }) : formatLogEvent(e)) + "\n");
    }
    if (!shown && !follow && !ctx.g.json) ctx.io.err.write("no matching lines\n");
    return EXIT.OK;
  },
};
