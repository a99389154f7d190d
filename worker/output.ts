import type { Readable } from "node:stream";
import type { Logger } from "./log";

/** Longer lines are cut: one runaway print must not become a multi-megabyte log record. */
const MAX_LINE = 16 * 1024;
/** Lines of a handler's stderr kept for the line that reports its failure. */
const TAIL_LINES = 10;

/**
 * A handler's stdout and stderr (a command, an app process, a handler thread's console) as the
 * worker's own JSON log lines, one per line it printed and tagged with where it came from: its
 * output never shares a line with the worker's records, even when it ends without a newline.
 */
export class HandlerOutput {
  private readonly tails = new Map<Readable, string[]>();

  constructor(
    private readonly log: Logger,
    /** Fields for each line, read when the line is complete (an app process's current message id). */
    private readonly fields: () => Record<string, unknown>,
  ) {}

  /** Logs each line of `stream`; returns a function giving its last lines. */
  attach(stream: Readable, name: "stdout" | "stderr"): () => string[] {
    const tail: string[] = [];
    this.tails.set(stream, tail);
    let partial = "";
    const emit = (line: string) => {
      const text = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}... (${line.length} characters)` : line;
      this.log.info({ ...this.fields(), stream: name }, text);
      tail.push(text);
      if (tail.length > TAIL_LINES) tail.shift();
    };
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) emit(line.replace(/\r$/, ""));
      if (partial.length > MAX_LINE) {
        emit(partial);
        partial = "";
      }
    });
    stream.on("end", () => {
      if (partial) emit(partial);
      partial = "";
    });
    return () => [...tail];
  }
}

/** Resolves when both streams have ended, so their last lines are logged before what follows. */
export function outputEnded(...streams: (Readable | null | undefined)[]): Promise<void> {
  return Promise.all(
    streams.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (!s || s.readableEnded || s.destroyed) return resolve();
          s.once("end", () => resolve());
          s.once("close", () => resolve());
        }),
    ),
  ).then(() => undefined);
}
