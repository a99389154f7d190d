import type { QueueDepth } from "./queues";
import type { ScalingEvent } from "./scaler";
import { seconds } from "./view";

/** How a local fleet run ended, and what it did. */
export interface FleetResult {
  exitCode: number;
  /** Why the fleet stopped: everything handled, Ctrl-C, --duration, an error. */
  reason: string;
  /** Set when the fleet stopped on an error; printed last. */
  error?: string;
  stack: string;
  endpoint: string;
  queueUrl: string;
  dlqUrl: string;
  durationMs: number;
  sent: number;
  /** Demo messages whose body asked the handler to fail. */
  madeToFail: number;
  processed: number;
  /** Handler failures: every receive that failed, whether or not the message was retried. */
  retries: number;
  dlq: number;
  /** What the main queue still held when the fleet stopped. */
  left: QueueDepth;
  peakWorkers: number;
  scaling: ScalingEvent[];
  restarts: number;
  workerPids: number[];
  logFile: string;
}

export function formatSummary(r: FleetResult): string {
  const row = (label: string, value: string) => `  ${label.padEnd(16)}${value}`;
  const throughput = r.durationMs > 0 ? (r.processed * 60_000) / r.durationMs : 0;
  const left = r.left.visible + r.left.inFlight + r.left.delayed;
  const scaling = r.scaling.length
    ? r.scaling.map((e) => `${e.from}→${e.to} at ${seconds(e.atMs)} (${e.why === "rule" ? "" : `${e.why}, `}backlog ${e.visible})`).join(", ")
    : "none";
  return [
    `summary (stack ${r.stack}): ${r.reason}`,
    row("duration", seconds(r.durationMs)),
    row("sent", `${r.sent}` + (r.madeToFail ? ` (${r.madeToFail} asked to fail)` : "")),
    row("processed", String(r.processed)),
    row("failed → DLQ", `${r.dlq}` + (r.retries ? ` (${r.retries} handler failures in all)` : "")),
    row(
      "left in queue",
      left === 0
        ? "0"
        : `${left} (${r.left.visible} visible, ${r.left.inFlight} in flight, ${r.left.delayed} delayed): gone with the embedded SQS`,
    ),
    row("throughput", `${Math.round(throughput)}/min (averaged over the whole run; the live rate counts the last 20 s)`),
    row("peak workers", String(r.peakWorkers)),
    row(`scaling (${r.scaling.length})`, scaling),
    row("worker restarts", String(r.restarts)),
    row("worker logs", r.logFile),
  ].join("\n");
}
