import type { KilnConfig } from "../../infra/config";
import { queueDepth } from "../../local/queues";
import type { AlarmView, GroupView, OpsFleet, PauseResult, QueueStats, ResumeResult, Throughput } from "../fleet";
import type { LogEvent, LogQuery } from "../log-lines";
import { alarmsFiring } from "./alarms";
import { awsCall } from "./call";
import { AwsClients } from "./clients";
import { groupView, pauseGroup, resumeGroup, setDesired } from "./group";
import { cloudWatchLogs } from "./logs";
import { oldestMessageAge, workerThroughput } from "./metrics";
import { findStackQueues, queueNameOf, StackQueues, stackNames } from "./stack-resources";

/** A deployed stack, reached with the operator's own credentials. */
export class AwsFleet implements OpsFleet {
  readonly kind = "aws" as const;
  readonly names: ReturnType<typeof stackNames>;
  private found?: Promise<StackQueues>;

  constructor(
    readonly cfg: KilnConfig,
    readonly clients: AwsClients,
  ) {
    this.names = stackNames(cfg.stack);
  }

  get where(): string {
    return `stack ${this.cfg.stack} on AWS (${this.clients.settings.region}${this.clients.settings.endpoint ? `, endpoint ${this.clients.settings.endpoint}` : ""})`;
  }

  get sqs() {
    return this.clients.sqs;
  }

  stackQueues(): Promise<StackQueues> {
    this.found ??= findStackQueues(this.clients, this.cfg.stack);
    return this.found;
  }

  async queues() {
    const q = await this.stackQueues();
    return { url: q.url, dlqUrl: q.dlqUrl };
  }

  async queueStats(): Promise<{ main: QueueStats; dlq: QueueStats }> {
    const q = await this.stackQueues();
    const [main, dlq, oldest, dlqOldest] = await Promise.all([
      awsCall(`reading the depth of ${queueNameOf(q.url)}`, () => queueDepth(this.sqs, q.url)),
      awsCall(`reading the depth of ${queueNameOf(q.dlqUrl)}`, () => queueDepth(this.sqs, q.dlqUrl)),
      oldestMessageAge(this.clients, queueNameOf(q.url)),
      oldestMessageAge(this.clients, queueNameOf(q.dlqUrl)),
    ]);
    return { main: { ...main, oldestAgeSeconds: oldest }, dlq: { ...dlq, oldestAgeSeconds: dlqOldest } };
  }

  throughput(): Promise<Throughput> {
    return workerThroughput(this.clients, this.cfg.stack);
  }

  group(): Promise<GroupView> {
    return groupView(this.clients, this.names.groupName);
  }

  alarms(): Promise<AlarmView[]> {
    return alarmsFiring(this.clients, this.names.alarmPrefix);
  }

  logs(q: LogQuery, signal: AbortSignal): AsyncIterable<LogEvent> {
    return cloudWatchLogs(this.clients, this.names.logGroupName, q, signal);
  }

  setDesired(n: number): Promise<void> {
    return setDesired(this.clients, this.names.groupName, n);
  }

  pause(): Promise<PauseResult> {
    return pauseGroup(this.clients, this.cfg.stack, this.names.groupName);
  }

  resume(): Promise<ResumeResult> {
    return resumeGroup(this.clients, this.names.groupName);
  }

  close(): void {
    this.clients.destroy();
  }
}
