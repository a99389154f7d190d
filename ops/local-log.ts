import * as fs from "node:fs";
import { pause } from "./io";
import { LogEvent, LogQuery, matches, parseLogLine } from "./log-lines";

/** How often --follow looks at the local fleet's log file for new lines. */
const FOLLOW_EVERY_MS = 300;

/** Reads whole lines appended to `file` from `offset`; a shorter file (a new run) starts over. */
function readFrom(file: string, offset: number): { lines: string[]; offset: number } {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return { lines: [], offset: 0 };
  }
  if (size < offset) offset = 0;
  if (size === offset) return { lines: [], offset };
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(size - offset);
    fs.readSync(fd, buf, 0, buf.length, offset);
    const text = buf.toString("utf8");
    const end = text.lastIndexOf("\n");
    if (end < 0) return { lines: [], offset };
    return { lines: text.slice(0, end).split("\n"), offset: offset + Buffer.byteLength(text.slice(0, end + 1)) };
  } finally {
    fs.closeSync(fd);
  }
}

/** The local fleet's worker log (JSON lines, each tagged with its worker) as log events. */
export async function* localLogs(file: string, q: LogQuery, signal: AbortSignal): AsyncGenerator<LogEvent> {
  let { lines, offset } = readFrom(file, 0);
  const now = Date.now();
  const first = lines.map((l) => parseLogLine(l, now)).filter((e) => matches(e, q));
  yield* q.limit && !q.follow ? first.slice(-q.limit) : first;
  while (q.follow && !signal.aborted) {
    await pause(FOLLOW_EVERY_MS, signal);
    ({ lines, offset } = readFrom(file, offset));
    for (const l of lines) {
      const e = parseLogLine(l, Date.now());
      if (matches(e, q)) yield e;
    }
  }
}
