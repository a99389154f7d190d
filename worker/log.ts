import pino from "pino";

/** One JSON line per event on stdout: journald keeps it, and `jq` reads it. */
export function createLogger(level: string, base: Record<string, unknown> = {}): pino.Logger {
  return pino({
    level,
    base: { ...base, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  },
  // Synchronous, so the line saying why the worker exits is written before it does.
  pino.destination({ dest: 1, sync: true }),
  );
}

export type Logger = pino.Logger;
