import { FilterLogEventsCommand, FilteredLogEvent } from "@aws-sdk/client-cloudwatch-logs";
import { pause } from "../io";
import { LogEvent, LogQuery, matches, parseLogLine } from "../log-lines";
import { awsCall, isAwsError } from "./call";
import type { AwsClients } from "./clients";
import { NotFoundError } from "../exit";

/** How often --follow asks CloudWatch Logs for new lines. */
const FOLLOW_EVERY_MS = 2_000;
/** Lines arrive in CloudWatch late and out of order; each poll looks back this far again. */
const FOLLOW_OVERLAP_MS = 60_000;

/**
 * A filter pattern that narrows what CloudWatch sends back. Every line is also checked here, so a
 * pattern only ever saves bytes: it never decides what is shown.
 */
export function filterPattern(q: LogQuery): string | undefined {
  if (q.messageIds?.length === 1) return `"${q.messageIds[0]}"`;
  if (q.messageIds && q.messageIds.length > 1) return q.messageIds.map((id) => `?"${id}"`).join(" ");
  if (q.level && q.level !== "trace") {
    const levels = ["trace", "debug", "info", "warn", "error", "fatal"];
    const wanted = levels.slice(levels.indexOf(q.level));
    return `{ ${wanted.map((l) => `$.level = "${l}"`).join(" || ")} }`;
  }
  return undefined;
}

function toEvent(e: FilteredLogEvent): LogEvent {
  return parseLogLine(e.message ?? "", e.timestamp ?? 0, e.logStreamName);
}

async function* pages(c: AwsClients, group: string, q: LogQuery, start: number, end?: number): AsyncGenerator<FilteredLogEvent[]> {
  let nextToken: string | undefined;
  do {
    let page;
    try {
      page = await c.logs.send(
        new FilterLogEventsCommand({
          logGroupName: group,
          logStreamNames: q.instance ? [q.instance] : undefined,
          startTime: start,
          endTime: end,
          filterPattern: filterPattern(q),
          nextToken,
        }),
      );
    } catch (e) {
      if (isAwsError(e, "ResourceNotFoundException")) {
        throw new NotFoundError(`no log group ${group}${q.instance ? ` or no stream ${q.instance} in it` : ""} in ${c.settings.region}: is the stack deployed here, and does the image ship its logs?`);
      }
      return awsCall(`reading ${group}`, () => Promise.reject(e));
    }
    yield page.events ?? [];
    nextToken = page.nextToken;
  } while (nextToken);
}

/** The worker lines of `group` matching `q`, oldest first; with `follow`, new ones as they come until `signal` aborts. */
export async function* cloudWatchLogs(c: AwsClients, group: string, q: LogQuery, signal: AbortSignal): AsyncGenerator<LogEvent> {
  /** Event ids already yielded, with their time, forgotten once they fall behind the overlap. */
  const seen = new Map<string, number>();
  if (!q.follow) {
    let kept: LogEvent[] = [];
    for await (const page of pages(c, group, q, q.since)) {
      for (const e of page.map(toEvent)) if (matches(e, q)) kept.push(e);
      if (q.limit && kept.length > q.limit * 2) kept = kept.slice(-q.limit);
    }
    kept.sort((a, b) => a.time - b.time);
    yield* q.limit ? kept.slice(-q.limit) : kept;
    return;
  }
  let from = q.since;
  while (!signal.aborted) {
    const batch: { id: string; e: LogEvent }[] = [];
    let newest = from;
    for await (const page of pages(c, group, q, Math.max(q.since, from - FOLLOW_OVERLAP_MS))) {
      for (const raw of page) {
        const id = raw.eventId ?? `${raw.logStreamName}/${raw.timestamp}/${raw.message}`;
        if (seen.has(id)) continue;
        seen.set(id, raw.timestamp ?? 0);
        newest = Math.max(newest, raw.timestamp ?? 0);
        const e = toEvent(raw);
        if (matches(e, q)) batch.push({ id, e });
      }
    }
    batch.sort((a, b) => a.e.time - b.e.time);
    for (const { e } of batch) yield e;
    from = newest;
    for (const [id, t] of seen) if (t < from - 2 * FOLLOW_OVERLAP_MS) seen.delete(id);
    await pause(FOLLOW_EVERY_MS, signal);
  }
}
