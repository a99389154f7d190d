import * as os from "node:os";
import { LOG_LEVELS, scaleInBudget, WORKER_DEFAULTS } from "./contract";

/** The worker's configuration, read only from its environment (the contract in docs/architecture.md). */
export interface WorkerSettings {
  queueUrl: string;
  region?: string;
  /** Set for local runs and tests; turns CloudWatch metrics off. */
  endpoint?: string;
  maxMessages: number;
  waitTimeSeconds: number;
  visibilityTimeout: number;
  maxWorkers: number;
  processingTimeoutMs: number;
  retryDelaySeconds: number;
  handler?: string;
  command?: string;
  app?: {
    command: string;
    /** Where each message is POSTed. */
    path: string;
    /** Answers 2xx once the app is ready; unset, any HTTP answer means ready. */
    healthPath?: string;
    startTimeoutMs: number;
  };
  recycle: { maxMessages?: number; maxRssMb?: number; maxLifetimeMs?: number };
  drainTimeoutMs: number;
  /** The drain's budget when the instance is scaled in (the lifecycle hook holds it meanwhile). */
  scaleInTimeoutMs: number;
  /** How long a queue that does not exist is waited for before it is a configuration error. */
  queueWaitMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
  stack?: string;
  /** Scale-in drain: the group and its terminate hook, when the stack configured them. */
  lifecycle?: { groupName: string; hookName: string };
  metrics: boolean;
}

/** A setting the worker cannot run with; it names the variable. Exits with EXIT.CONFIG_ERROR. */
export class WorkerConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`${variable} ${problem}`);
    this.name = "WorkerConfigError";
  }
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, min: number, max: number, fallback?: number): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new WorkerConfigError(name, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  }
  return Number(raw);
}

/** 0 turns a recycle limit off, as unset does. */
const limit = (env: Env, name: string, max: number) => integer(env, name, 0, max) || undefined;

function logLevel(raw: string | undefined): WorkerSettings["logLevel"] {
  // The seeds' Python worker used LOG_LEVEL=WARNING; accept its spelling.
  const level = (raw ?? WORKER_DEFAULTS.LOG_LEVEL).trim().toLowerCase().replace(/^warning$/, "warn");
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new WorkerConfigError("LOG_LEVEL", `must be one of ${LOG_LEVELS.join(", ")} (got ${JSON.stringify(raw)})`);
  }
  return level as WorkerSettings["logLevel"];
}

export function readSettings(env: Env = process.env, cpus = os.availableParallelism()): WorkerSettings {
  const queueUrl = env.SQS_QUEUE_URL?.trim();
  if (!queueUrl) throw new WorkerConfigError("SQS_QUEUE_URL", "is not set: it names the queue to consume");
  try {
    new URL(queueUrl);
  } catch {
    throw new WorkerConfigError("SQS_QUEUE_URL", `must be a queue URL (got ${JSON.stringify(queueUrl)})`);
  }

  const handler = env.WORKER_HANDLER?.trim() || undefined;
  const command = env.WORKER_COMMAND?.trim() || undefined;
  const appCommand = env.WORKER_APP?.trim() || undefined;
  const modes = (["WORKER_HANDLER", "WORKER_COMMAND", "WORKER_APP"] as const).filter((name) => env[name]?.trim());
  if (modes.length !== 1) {
    throw new WorkerConfigError(
      modes.length ? modes[0] : "WORKER_HANDLER, WORKER_COMMAND or WORKER_APP",
      modes.length
        ? `and ${modes.slice(1).join(" and ")} are ${modes.length === 2 ? "both" : "all"} set: set exactly one`
        : "must be set: a JS module exporting handle(message, { signal }), a command run once per message, " +
            "or a long-lived HTTP app on $PORT",
    );
  }
  const path = (name: string, fallback?: string) => {
    const raw = env[name]?.trim() || fallback;
    if (raw !== undefined && !/^\/[^\s]*$/.test(raw)) {
      throw new WorkerConfigError(name, `must be a URL path starting with / (got ${JSON.stringify(raw)})`);
    }
    return raw;
  };

  const groupName = env.KILN_ASG_NAME?.trim();
  const hookName = env.KILN_LIFECYCLE_HOOK?.trim();
  const endpoint = env.AWS_ENDPOINT_URL_SQS?.trim() || env.AWS_ENDPOINT_URL?.trim() || undefined;
  const region = env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || undefined;
  const lifetime = limit(env, "WORKER_MAX_LIFETIME", 31_536_000);
  const processingTimeout = integer(env, "PROCESSING_TIMEOUT", 1, 43_200, WORKER_DEFAULTS.PROCESSING_TIMEOUT)!;
  const drainTimeout = integer(env, "WORKER_DRAIN_TIMEOUT", 0, 7_200, WORKER_DEFAULTS.WORKER_DRAIN_TIMEOUT)!;

  return {
    queueUrl,
    region,
    endpoint,
    maxMessages: integer(env, "SQS_MAX_MESSAGES", 1, 10, WORKER_DEFAULTS.SQS_MAX_MESSAGES)!,
    waitTimeSeconds: integer(env, "SQS_WAIT_TIME", 0, 20, WORKER_DEFAULTS.SQS_WAIT_TIME)!,
    visibilityTimeout: integer(env, "SQS_VISIBILITY_TIMEOUT", 1, 43_200, WORKER_DEFAULTS.SQS_VISIBILITY_TIMEOUT)!,
    maxWorkers: integer(env, "MAX_WORKERS", 1, 10_000, Math.max(1, cpus - 1))!,
    processingTimeoutMs: processingTimeout * 1000,
    retryDelaySeconds: integer(env, "WORKER_RETRY_DELAY", 0, 43_200, WORKER_DEFAULTS.WORKER_RETRY_DELAY)!,
    handler,
    command,
    app: appCommand ? {
      command: appCommand,
      path: path("WORKER_APP_PATH", WORKER_DEFAULTS.WORKER_APP_PATH)!,
      healthPath: path("WORKER_APP_HEALTH_PATH"),
      startTimeoutMs: integer(env, "WORKER_APP_START_TIMEOUT", 1, 3_600, WORKER_DEFAULTS.WORKER_APP_START_TIMEOUT)! * 1000,
    } : undefined,
    recycle: {
      maxMessages: limit(env, "WORKER_MAX_MESSAGES", 1_000_000_000),
      maxRssMb: limit(env, "WORKER_MAX_RSS_MB", 1_048_576),
      maxLifetimeMs: lifetime && lifetime * 1000,
    },
    drainTimeoutMs: drainTimeout * 1000,
    // A scaled-in instance is held by its lifecycle hook, not by systemd's stop timeout: a message
    // may use its whole processing time there.
    scaleInTimeoutMs: scaleInBudget(integer(env, "WORKER_SCALE_IN_TIMEOUT", 0, 172_800, 0)!, processingTimeout) * 1000,
    queueWaitMs: integer(env, "WORKER_QUEUE_WAIT", 0, 3_600, 60)! * 1000,
    logLevel: logLevel(env.LOG_LEVEL),
    stack: env.KILN_STACK?.trim() || undefined,
    lifecycle: groupName && hookName ? { groupName, hookName } : undefined,
    // Off locally (an endpoint override) unless asked for; KILN_METRICS=off turns it off anywhere.
    metrics: env.KILN_METRICS === "on" || (Boolean(region) && !endpoint && env.KILN_METRICS !== "off"),
  };
}

/** A failed message comes back after retryDelay × 2^(receives − 1) seconds, at most 12 hours. */
export function retryDelay(baseSeconds: number, receiveCount: number): number {
  return Math.min(43_200, baseSeconds * 2 ** Math.max(0, receiveCount - 1));
}
