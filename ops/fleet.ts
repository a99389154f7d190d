import type { SQSClient } from "@aws-sdk/client-sqs";
import type { KilnConfig } from "../infra/config";
import type { LogEvent, LogQuery } from "./log-lines";

/**
 * What the ops commands read and do, whether the fleet is a deployed stack (AWS) or a running
 * `npm run local`. Each command is written once against this; the two sides differ only here.
 */
export interface OpsFleet {
  readonly kind: "aws" | "local";
  /** Where the answers come from, for the first line of human output. */
  readonly where: string;
  readonly cfg: KilnConfig;
  /** A client for the stack's queues (AWS, or the local fleet's embedded SQS). */
  readonly sqs: SQSClient;
  queues(): Promise<{ url: string; dlqUrl: string }>;
  queueStats(): Promise<{ main: QueueStats; dlq: QueueStats }>;
  /** Messages the workers processed and failed a minute, from their own counts. */
  throughput(): Promise<Throughput>;
  group(): Promise<GroupView>;
  alarms(): Promise<AlarmView[]>;
  /** Worker log lines matching `q`, oldest first; with `follow`, keeps yielding until `signal` aborts. */
  logs(q: LogQuery, signal: AbortSignal): AsyncIterable<LogEvent>;
  setDesired(n: number): Promise<void>;
  pause(): Promise<PauseResult>;
  resume(): Promise<ResumeResult>;
  close(): void;
}

export interface QueueStats {
  visible: number;
  inFlight: number;
  delayed: number;
  /** Seconds the oldest message has waited; undefined where nothing reports it yet. */
  oldestAgeSeconds?: number;
}

export interface Throughput {
  /** Processed a minute over the last 5 and 15 minutes; undefined without data. */
  processed5?: number;
  processed15?: number;
  failed15?: number;
  /** Where the counts come from, said once in the output. */
  source: string;
}

export interface InstanceView {
  id: string;
  /** InService, Pending, Terminating...; locally running, draining, restarting. */
  state: string;
  health?: string;
  /** The launch template version it was launched from. */
  version?: string;
  type?: string;
  zone?: string;
  /** Epoch ms it started, where known. */
  since?: number;
}

export interface GroupView {
  name: string;
  min: number;
  max: number;
  desired: number;
  inService: number;
  pending: number;
  terminating: number;
  instances: InstanceView[];
  launchTemplate?: { id: string; version: string; latest?: string };
  suspended: string[];
  paused?: PauseRecord;
  refresh?: RefreshView;
  /** Stack seconds per real second: 1 on AWS, the local fleet's --speed. */
  speed?: number;
}

/** What `pause` changed, kept on the group so `resume` can put it back. */
export interface PauseRecord {
  at: string;
  min: number;
  desired: number;
  suspended: string[];
}

export interface RefreshView {
  id: string;
  status: string;
  percentage?: number;
  instancesToUpdate?: number;
  started?: string;
  reason?: string;
}

export interface AlarmView {
  name: string;
  state: string;
  reason?: string;
  since?: string;
}

export interface PauseResult {
  already: boolean;
  record: PauseRecord;
  /** What happens to the pause at the next `pulumi up`, or locally when the fleet stops. */
  note: string;
}

export interface ResumeResult {
  wasPaused: boolean;
  min: number;
  desired: number;
  note: string;
}

export const emptyStats = (): QueueStats => ({ visible: 0, inFlight: 0, delayed: 0 });
export const backlog = (q: QueueStats) => q.visible + q.inFlight + q.delayed;
