import pino from "pino";
import { RetryClock } from "../../../worker/env/retry";

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger like the worker's (JSON lines, level names), keeping its lines for assertions. */
export function captureLog() {
  const raw: string[] = [];
  const stream = {
    write(chunk: string) {
      raw.push(...chunk.split("\n").filter(Boolean));
    },
  };
  const log = pino({ level: "debug", formatters: { level: (label) => ({ level: label }) } }, stream);
  return {
    log,
    /** Every line written, as text: what the journal would hold. */
    raw,
    get lines(): LogLine[] {
      return raw.map((l) => JSON.parse(l) as LogLine);
    },
    at(level: string): LogLine[] {
      return this.lines.filter((l) => l.level === level);
    },
  };
}

/** Time that passes only when the code under test sleeps: a three-minute deadline takes no time. */
export function virtualClock(random = () => 0.5): RetryClock & { slept: number[]; elapsed(): number } {
  let now = 1_700_000_000_000;
  const start = now;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    random,
    async sleep(ms: number) {
      slept.push(ms);
      now += ms;
    },
    elapsed: () => now - start,
  };
}
