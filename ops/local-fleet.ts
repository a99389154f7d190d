import { SQSClient } from "@aws-sdk/client-sqs";
import type { KilnConfig } from "../infra/config";
import { callControl, LocalStatus } from "../local/control";
import type { LocalFleetRecord } from "../local/control-state";
import { CallFailed, UsageError } from "./exit";
import type { AlarmView, GroupView, OpsFleet, PauseResult, QueueStats, ResumeResult, Throughput } from "./fleet";
import { localLogs } from "./local-log";
import type { LogEvent, LogQuery } from "./log-lines";

/**
 * A running `npm run local`, reached through its control socket and its embedded SQS: the same
 * commands as on AWS, answered by the fleet itself.
 */
export class LocalOpsFleet implements OpsFleet {
  readonly kind = "local" as const;
  readonly sqs: SQSClient;

  constructor(
    readonly cfg: KilnConfig,
    readonly record: LocalFleetRecord,
  ) {
    // The embedded SQS takes any keys; static ones keep the SDK from looking for a real profile.
    this.sqs = new SQSClient({ region: record.region, endpoint: record.endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } });
  }

  get where(): string {
    return `local fleet of stack ${this.cfg.stack} (npm run local, pid ${this.record.pid}; --aws for the deployed stack)`;
  }

  private async call<T>(method: "GET" | "POST", route: string, body?: unknown): Promise<T> {
    try {
      return await callControl<T>(this.record.socket, method, route, body);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === "ECONNREFUSED" || err.code === "ENOENT") {
        throw new CallFailed(`the local fleet of stack ${this.cfg.stack} (pid ${this.record.pid}) does not answer on ${this.record.socket}: it may be stopping`);
      }
      // The fleet's own refusal (paused, out of range): the operator asked for something it will not do.
      throw route === "/status" ? new CallFailed(`the local fleet: ${err.message}`) : new UsageError(err.message);
    }
  }

  status(): Promise<LocalStatus> {
    return this.call<LocalStatus>("GET", "/status");
  }

  async queues() {
    return { url: this.record.queueUrl, dlqUrl: this.record.dlqUrl };
  }

  async queueStats(): Promise<{ main: QueueStats; dlq: QueueStats }> {
    const s = await this.status();
    return { main: s.queue, dlq: s.dlq };
  }

  async throughput(): Promise<Throughput> {
    const s = await this.status();
    return { ...s.rates, source: `the local fleet's own count of processed lines (the run is ${Math.round((Date.now() - s.startedAt) / 1000)} s old)` };
  }

  async group(): Promise<GroupView> {
    const s = await this.status();
    const count = (state: string) => s.workers.filter((w) => w.state === state).length;
    return {
      name: `local workers (--speed ${s.speed})`,
      min: s.scaling.min,
      max: s.scaling.max,
      desired: s.scaling.desired,
      inService: count("running"),
      pending: count("restarting"),
      terminating: count("draining"),
      instances: s.workers.map((w) => ({ id: w.id, state: w.state, since: w.startedAt, type: w.pid ? `pid ${w.pid}` : undefined })),
      suspended: s.paused ? ["rule"] : [],
      paused: s.paused ? { at: s.pausedAt ? new Date(s.pausedAt).toISOString() : "", min: s.scaling.min, desired: 0, suspended: ["rule"] } : undefined,
      speed: s.speed,
    };
  }

  /** The stack's three alarms (infra/fleet-monitoring.ts), judged on the local fleet's own figures. */
  async alarms(): Promise<AlarmView[]> {
    const s = await this.status();
    const latency = this.cfg.acceptableLatency / s.speed;
    const firing: AlarmView[] = [];
    if (s.dlq.visible > 0) firing.push({ name: "dlq-not-empty", state: "ALARM", reason: `${s.dlq.visible} message(s) in the dead-letter queue` });
    if ((s.queue.oldestAgeSeconds ?? 0) > latency) {
      firing.push({ name: "oldest-message", state: "ALARM", reason: `the oldest message has waited ${Math.round(s.queue.oldestAgeSeconds!)} s, above ${+latency.toFixed(1)} s (acceptable latency / speed)` });
    }
    if (s.queue.visible > 0 && !s.workers.some((w) => w.state === "running") && !s.paused) {
      firing.push({ name: "backlog-without-workers", state: "ALARM", reason: `${s.queue.visible} message(s) waiting and no worker running` });
    }
    return firing;
  }

  logs(q: LogQuery, signal: AbortSignal): AsyncIterable<LogEvent> {
    return localLogs(this.record.logFile, q, signal);
  }

  async setDesired(n: number): Promise<void> {
    await this.call("POST", "/scale", { desired: n });
  }

  async pause(): Promise<PauseResult> {
    const r = await this.call<{ already: boolean; desired: number }>("POST", "/pause");
    return {
      already: r.already,
      record: { at: new Date().toISOString(), min: 0, desired: r.desired, suspended: ["rule"] },
      note: "the local fleet keeps the pause until `kiln resume` or until it stops; nothing is deployed",
    };
  }

  async resume(): Promise<ResumeResult> {
    const r = await this.call<{ wasPaused: boolean; desired: number }>("POST", "/resume");
    return { wasPaused: r.wasPaused, min: 0, desired: r.desired, note: r.wasPaused ? "the fleet's rule scales it again" : "the fleet was not paused" };
  }

  close(): void {
    this.sqs.destroy();
  }
}
