import type { Message } from "@aws-sdk/client-sqs";

/**
 * How Elastic Beanstalk's worker daemon (sqsd) hands a message to an app, so an app written for a
 * Beanstalk worker environment runs under kiln unchanged: the body POSTed to the app's path, and
 * these headers. 200 means done; any other answer, a broken connection or no answer in time means
 * the message comes back for another try.
 */
export const SQSD_USER_AGENT = "aws-sqsd/3.0 (kiln)";
/** sqsd's default MIME type. */
export const SQSD_CONTENT_TYPE = "application/json";

/** Attributes sqsd reads for its periodic tasks (cron.yaml) and never passes on as headers. */
const SQSD_ATTRIBUTE = /^beanstalk\.sqsd\./;

/** sqsd formats times as ISO 8601 in UTC to the second: 2024-05-01T09:30:00Z. */
function iso8601(epochMs: string | undefined): string | undefined {
  const ms = Number(epochMs);
  if (!epochMs || !Number.isFinite(ms)) return undefined;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * A header value as HTTP/1.1 can carry it: UTF-8 bytes as Latin-1 characters (what servers such as
 * Python's http.server decode them with), line breaks and other control characters as spaces.
 */
function headerValue(value: string): string {
  return Buffer.from(value.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, " "), "utf8").toString("latin1");
}

export function queueName(queueUrl: string): string {
  return queueUrl.replace(/\/+$/, "").split("/").pop() ?? queueUrl;
}

/** The request sqsd would send for `message`: the path it goes to and its headers. */
export function sqsdRequest(message: Message, queueUrl: string, defaultPath: string): { path: string; headers: Record<string, string> } {
  const a = message.Attributes ?? {};
  const attrs = message.MessageAttributes ?? {};
  const headers: Record<string, string> = {
    "Content-Type": SQSD_CONTENT_TYPE,
    "User-Agent": SQSD_USER_AGENT,
    "X-Aws-Sqsd-Msgid": message.MessageId ?? "",
    "X-Aws-Sqsd-Receive-Count": a.ApproximateReceiveCount ?? "1",
    "X-Aws-Sqsd-Queue": queueName(queueUrl),
  };
  const optional: [string, string | undefined][] = [
    ["X-Aws-Sqsd-First-Received-At", iso8601(a.ApproximateFirstReceiveTimestamp)],
    ["X-Aws-Sqsd-Sent-At", iso8601(a.SentTimestamp)],
    ["X-Aws-Sqsd-Sender-Id", a.SenderId],
  ];
  // A periodic task (sqsd's cron.yaml) names its own path, task and schedule in attributes.
  const taskPath = attrs["beanstalk.sqsd.path"]?.StringValue;
  const taskName = attrs["beanstalk.sqsd.task_name"]?.StringValue;
  const scheduled = attrs["beanstalk.sqsd.scheduled_time"]?.StringValue;
  if (taskPath) optional.push(["X-Aws-Sqsd-Path", taskPath]);
  if (taskName) optional.push(["X-Aws-Sqsd-Taskname", taskName]);
  if (scheduled) optional.push(["X-Aws-Sqsd-Scheduled-At", iso8601(String(Date.parse(scheduled)))]);
  for (const [name, value] of optional) if (value) headers[name] = headerValue(value);
  // String and Number attributes become headers; sqsd leaves Binary ones out.
  for (const [name, value] of Object.entries(attrs)) {
    if (SQSD_ATTRIBUTE.test(name) || value.StringValue === undefined) continue;
    if (!/^(String|Number)/.test(value.DataType ?? "String")) continue;
    headers[`X-Aws-Sqsd-Attr-${name}`] = headerValue(value.StringValue);
  }
  return { path: taskPath || defaultPath, headers };
}
