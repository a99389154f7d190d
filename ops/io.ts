/** Where a command writes: the terminal, or buffers in tests. */
export interface OpsIo {
  out: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  err: { write(text: string): unknown };
  /** Aborted on Ctrl-C: long work (watch, follow, wait) stops and reports where it got. */
  signal: AbortSignal;
}

const ESC = "\x1b[";

/**
 * Text redrawn in place on a terminal (a --watch view, a progress bar); printed as successive
 * blocks anywhere else, so a pipe or a log file reads top to bottom.
 */
export class Redraw {
  private lines = 0;

  constructor(private readonly out: OpsIo["out"]) {}

  get tty(): boolean {
    return Boolean(this.out.isTTY);
  }

  show(text: string): void {
    if (this.tty) {
      if (this.lines > 0) this.out.write(`${ESC}${this.lines}F${ESC}0J`);
      const width = Math.max(20, (this.out.columns || 120) - 1);
      const body = text
        .split("\n")
        .map((l) => (l.length > width ? l.slice(0, width) : l))
        .join("\n");
      this.out.write(body + "\n");
      this.lines = body.split("\n").length;
    } else {
      this.out.write(text + "\n");
    }
  }

  /** Leaves what is shown on screen; the next show() starts below it. */
  keep(): void {
    this.lines = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
