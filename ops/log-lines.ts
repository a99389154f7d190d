import { LOG_LEVELS } from "../worker/contract";

export type Level = (typeof LOG_LEVELS)[number];

/** One worker log line, read from CloudWatch Logs or the local fleet's log file. */
export interface LogEvent {
  /** Epoch ms. */
  time: number;
  level?: Level;
  msg: string;
  messageId?: string;
  err?: string;
  /** The instance (log stream) or local worker it came from. */
  source?: string;
  /** The line's other fields, for --json. */
  fields: Record<string, unknown>;
}

export interface LogQuery {
  /** Epoch ms; lines before it are left out. */
  since: number;
  /** Least severe level shown. */
  level?: Level;
  messageIds?: string[];
  instance?: string;
  follow?: boolean;
  /** Most lines returned (the newest), when not following. */
  limit?: number;
}

const RANK = new Map<string, number>(LOG_LEVELS.map((l, i) => [l, i]));

/** "warn" and "WARNING" (what the seeds' Python logging calls it) are one level. */
export function parseLevel(raw: string): Level | undefined {
  const l = raw.trim().toLowerCase();
  const name = l === "warning" ? "warn" : l === "critical" ? "fatal" : l;
  return RANK.has(name) ? (name as Level) : undefined;
}

export function atLeast(level: Level | undefined, min: Level | undefined): boolean {
  if (!min) return true;
  if (!level) return false;
  return RANK.get(level)! >= RANK.get(min)!;
}

/**
 * Reads one line as the worker writes it (pino: `level` as a label, `time`, `msg`, `messageId`,
 * `err`), or as a log shipper wraps it (the journal's `MESSAGE`), or as the local fleet records a
 * handler's own output (`output`). Anything else is kept as plain text.
 */
export function parseLogLine(text: string, fallbackTime: number, source?: string): LogEvent {
  let parsed: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === "object" && v !== null && !Array.isArray(v)) parsed = v as Record<string, unknown>;
  } catch {
    // Plain text.
  }
  if (parsed && typeof parsed.MESSAGE === "string" && !("msg" in parsed)) {
    return parseLogLine(parsed.MESSAGE, fallbackTime, source);
  }
  if (!parsed) return { time: fallbackTime, msg: text, source, fields: {} };
  const { level, time, msg, messageId, err, output, worker, ...rest } = parsed;
  const when = typeof time === "string" ? Date.parse(time) : typeof time === "number" ? time : NaN;
  return {
    time: Number.isFinite(when) ? when : fallbackTime,
    level: typeof level === "string" ? parseLevel(level) : typeof level === "number" ? pinoNumericLevel(level) : undefined,
    msg: typeof msg === "string" ? msg : typeof output === "string" ? output : text,
    messageId: typeof messageId === "string" ? messageId : undefined,
    err: typeof err === "string" ? err : typeof err === "object" && err && "message" in err ? String((err as { message: unknown }).message) : undefined,
    source: typeof worker === "string" ? worker : source,
    fields: rest,
  };
}

function pinoNumericLevel(n: number): Level | undefined {
  return ({ 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" } as Record<number, Level>)[n];
}

export function matches(e: LogEvent, q: LogQuery): boolean {
  if (e.time < q.since) return false;
  if (!atLeast(e.level, q.level)) return false;
  if (q.messageIds && (!e.messageId || !q.messageIds.includes(e.messageId))) return false;
  if (q.instance && e.source !== q.instance) return false;
  return true;
}

/** `2026-01-05 12:00:03 warn  i-0abc  message failed; it returns to the queue  messageId=... err=...` */
export function formatLogEvent(e: LogEvent): string {
  const when = new Date(e.time).toISOString().replace("T", " ").slice(0, 19);
  const extra = [e.messageId ? `messageId=${e.messageId}` : "", e.err ? `err=${JSON.stringify(e.err)}` : ""].filter(Boolean).join(" ");
  return [when, (e.level ?? "-").padEnd(5), e.source ?? "-", e.msg, extra].filter(Boolean).join("  ");
}
