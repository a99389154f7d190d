import type { QueueDepth } from "./queues";

/** Where the view writes: process.stdout, or a buffer in tests. */
export interface TextOut {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface FleetStatus {
  elapsedMs: number;
  queue: QueueDepth;
  dlq: number;
  processed: number;
  perMinute: number;
  retries: number;
  running: number;
  draining: number;
  desired: number;
  etaSeconds?: number;
  phase: string;
}

const ESC = "\x1b[";

export function seconds(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

function eta(status: FleetStatus): string {
  if (status.etaSeconds === undefined) return "-";
  return status.etaSeconds === 0 ? "0 s" : `~${seconds(status.etaSeconds * 1000)}`;
}

function workers(status: FleetStatus): string {
  return `${status.running}/${status.desired}` + (status.draining ? ` (+${status.draining} draining)` : "");
}

/** One line per status, for logs and pipes: every figure named, nothing redrawn. */
export function statusLine(s: FleetStatus): string {
  return (
    `[${seconds(s.elapsedMs).padStart(6)}] ` +
    [
      `backlog ${s.queue.visible}` + (s.queue.delayed ? ` (+${s.queue.delayed} delayed)` : ""),
      `in flight ${s.queue.inFlight}`,
      `processed ${s.processed} (${Math.round(s.perMinute)}/min)`,
      `DLQ ${s.dlq}`,
      `workers ${workers(s)}`,
      `ETA ${eta(s)}`,
    ].join(" | ") +
    (s.phase === "running" ? "" : ` | ${s.phase}`)
  );
}

function statusBlock(s: FleetStatus): string[] {
  const row = (label: string, value: string) => `  ${label.padEnd(14)}${value}`;
  return [
    row("backlog", `${s.queue.visible}` + (s.queue.delayed ? `  (+${s.queue.delayed} delayed)` : "")),
    row("in flight", String(s.queue.inFlight)),
    row("processed", `${s.processed}  (${Math.round(s.perMinute)}/min over the last 20 s)`),
    row("failures", `${s.retries} handler failures, ${s.dlq} in the DLQ`),
    row("workers", `${workers(s)}  (running/desired)`),
    row("ETA", eta(s)),
    row("elapsed", `${seconds(s.elapsedMs)}  ${s.phase}`),
  ];
}

/**
 * The live view. On a terminal a status block is redrawn in place and events scroll above it;
 * anywhere else (a pipe, CI, a file) events and a status line every `plainEveryMs` are printed
 * plainly, so the output stays readable as a log.
 */
export class LiveView {
  private drawn = 0;
  private lastPlain = -Infinity;
  private last?: FleetStatus;
  readonly tty: boolean;

  constructor(
    private readonly out: TextOut,
    private readonly o: { plain: boolean; plainEveryMs: number },
  ) {
    this.tty = Boolean(out.isTTY) && !o.plain;
  }

  /** Prints text that stays: the header, an event, a notice. */
  print(text: string): void {
    if (this.tty) {
      this.erase();
      this.out.write(text + "\n");
      if (this.last) this.draw(this.last);
    } else {
      this.out.write(text + "\n");
    }
  }

  event(elapsedMs: number, text: string): void {
    this.print(`[${seconds(elapsedMs).padStart(6)}] ${text}`);
  }

  update(status: FleetStatus, force = false): void {
    this.last = status;
    if (this.tty) {
      this.erase();
      this.draw(status);
    } else if (force || status.elapsedMs - this.lastPlain >= this.o.plainEveryMs) {
      this.lastPlain = status.elapsedMs;
      this.out.write(statusLine(status) + "\n");
    }
  }

  /** Leaves the last status on screen and stops redrawing. */
  close(): void {
    this.drawn = 0;
    this.last = undefined;
  }

  private draw(status: FleetStatus): void {
    const width = Math.max(20, (this.out.columns || 100) - 1);
    const lines = statusBlock(status).map((l) => (l.length > width ? l.slice(0, width) : l));
    this.out.write(lines.join("\n") + "\n");
    this.drawn = lines.length;
  }

  private erase(): void {
    if (this.drawn > 0) this.out.write(`${ESC}${this.drawn}F${ESC}0J`);
    this.drawn = 0;
  }
}
