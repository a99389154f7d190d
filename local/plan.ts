import * as path from "node:path";
import { ConfigError, KilnConfig, parseStackConfig } from "../infra/config";
import { readStackFile } from "../infra/stack-file";
import { backlogTarget } from "../infra/scaling-rule";
import type * as WorkerEnvironment from "../infra/worker-environment";
import { WORKER_DEFAULTS, WORKER_VARIABLES } from "../worker/contract";

export const ROOT = path.resolve(__dirname, "..");
export const DEMO_HANDLER = path.join(ROOT, "worker", "examples", "demo-handler.js");

/** What `npm run local` is asked to do; every field has its default in DEFAULT_OPTIONS or the stack. */
export interface LocalOptions {
  stack: string;
  /** Where Pulumi.<stack>.yaml lives. */
  stackDir: string;
  /** Demo messages fed at start. */
  messages: number;
  /** Demo messages per second; 0 sends them all at once. */
  rate: number;
  /** Share of the demo messages whose body asks the handler to fail. */
  failRate: number;
  handler?: string;
  command?: string;
  /** Extra worker environment; wins over the stack's kiln:env. */
  env: Record<string, string>;
  /** MAX_WORKERS of each worker process; undefined: the stack's, or LOCAL_CONCURRENCY when it has none. */
  concurrency?: number;
  minSize?: number;
  maxSize?: number;
  /** Stack seconds per local second, applied to the stack's cooldowns, latency, visibility and retry delay. */
  speed: number;
  /** Local seconds; override what --speed makes of the stack's values. */
  scaleOutCooldown?: number;
  scaleInCooldown?: number;
  acceptableLatency?: number;
  avgProcessingMs?: number;
  /** Keep serving once everything is handled (the default is to drain and exit). */
  keepRunning: boolean;
  /** Seconds after which the fleet drains and exits whatever is left. */
  duration?: number;
  logFile?: string;
  /** Plain periodic lines even when stdout is a terminal. */
  plain: boolean;
  /** How often the queue is read, the rule applied and the view refreshed. */
  tickMs: number;
  /** How often a plain status line is printed. */
  plainEveryMs: number;
}

export const LOCAL_CONCURRENCY = 4;
/** Long-poll seconds of local workers: a stopped worker's abandoned poll can hide a message this long. */
export const LOCAL_WAIT_TIME = 1;
/** Below this a slow visibility extension could let a message still being processed show again. */
const MIN_LOCAL_VISIBILITY = 5;
/** systemd's RestartSec for kiln-worker.service. */
const SYSTEMD_RESTART_SEC = 10;

export const DEFAULT_OPTIONS: LocalOptions = {
  stack: "dev",
  stackDir: ROOT,
  messages: 200,
  rate: 0,
  failRate: 0.03,
  env: {},
  speed: 20,
  keepRunning: false,
  plain: false,
  tickMs: 1000,
  plainEveryMs: 2000,
};

/** The stack's settings as this machine runs them. Every time is in local seconds. */
export interface FleetPlan {
  options: LocalOptions;
  cfg: KilnConfig;
  stackFile: string;
  queueName: string;
  dlqName: string;
  visibilityTimeout: number;
  scaling: {
    min: number;
    max: number;
    /** Messages per worker the rule aims at: backlogTarget(acceptableLatency, avgProcessingMs). */
    target: number;
    acceptableLatency: number;
    avgProcessingMs: number;
    scaleOutCooldownMs: number;
    scaleInCooldownMs: number;
  };
  /** Delay before a worker that crashed is started again (RestartSec, compressed). */
  restartDelayMs: number;
  concurrency: number;
  /** What each worker runs, for the header. */
  processor: { kind: "handler" | "command"; what: string; demo: boolean };
  logFile: string;
  workerEnv(queueUrl: string, endpoint: string): Record<string, string>;
}

/** Thrown for a flag or stack the user named wrongly: the CLI prints it and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Variables the local fleet itself must set for the workers; `--env` may not replace them. */
const FLEET_OWNED = [
  "SQS_QUEUE_URL",
  "AWS_REGION",
  "AWS_ENDPOINT_URL_SQS",
  "AWS_ENDPOINT_URL",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "LOG_LEVEL",
  "WORKER_HANDLER",
  "WORKER_COMMAND",
  "KILN_ASG_NAME",
  "KILN_LIFECYCLE_HOOK",
];

export function planFleet(options: LocalOptions): FleetPlan {
  let stack: ReturnType<typeof readStackFile>;
  try {
    stack = readStackFile(options.stackDir, options.stack);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new UsageError(`--stack ${options.stack}: ${(e as Error).message}`);
  }
  // A ConfigError (invalid stack file) propagates: it lists every problem, the CLI prints it.
  const cfg = parseStackConfig(options.stack, stack.raw);

  for (const name of Object.keys(options.env)) {
    if (FLEET_OWNED.includes(name)) {
      throw new UsageError(`--env ${name}: the local fleet sets ${name} itself${flagFor(name)}`);
    }
  }
  if (options.handler && options.command) throw new UsageError("--handler and --command: give one of them, not both");

  const min = options.minSize ?? cfg.minSize;
  const max = options.maxSize ?? cfg.maxSize;
  if (max < 1) throw new UsageError(`--max must be at least 1 (got ${max})`);
  if (min > max) {
    throw new UsageError(`--min ${min} is above the maximum of ${max} workers${options.maxSize === undefined ? ` (kiln:maxSize of ${options.stack})` : ""}`);
  }

  const s = options.speed;
  const acceptableLatency = options.acceptableLatency ?? cfg.acceptableLatency / s;
  const avgProcessingMs = options.avgProcessingMs ?? cfg.avgProcessingMs;
  const visibilityTimeout = Math.max(MIN_LOCAL_VISIBILITY, Math.ceil(cfg.visibilityTimeout / s));
  const retryDelay = Math.max(1, Math.round(WORKER_DEFAULTS.WORKER_RETRY_DELAY / s));
  const concurrency = options.concurrency ?? (cfg.maxWorkers || LOCAL_CONCURRENCY);

  // The stack's handler or command is a path on an instance; locally the demo handler stands in.
  const processor: FleetPlan["processor"] = options.command
    ? { kind: "command", what: options.command, demo: false }
    : { kind: "handler", what: path.resolve(options.handler ?? DEMO_HANDLER), demo: !options.handler };

  const logFile = path.resolve(options.logFile ?? path.join(ROOT, ".kiln", "local", `${options.stack}-workers.log`));

  return {
    options,
    cfg,
    stackFile: stack.file,
    queueName: `kiln-${options.stack}`,
    dlqName: `kiln-${options.stack}-dlq`,
    visibilityTimeout,
    scaling: {
      min,
      max,
      target: backlogTarget(acceptableLatency, avgProcessingMs),
      acceptableLatency,
      avgProcessingMs,
      scaleOutCooldownMs: (options.scaleOutCooldown ?? cfg.scaleOutCooldown / s) * 1000,
      scaleInCooldownMs: (options.scaleInCooldown ?? cfg.scaleInCooldown / s) * 1000,
    },
    restartDelayMs: Math.max(500, (SYSTEMD_RESTART_SEC * 1000) / s),
    concurrency,
    processor,
    logFile,
    workerEnv(queueUrl, endpoint) {
      // Required here, not at the top: it loads Pulumi, which parsing flags does not need.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { workerVariables } = require("../infra/worker-environment") as typeof WorkerEnvironment;
      const stackVars = workerVariables(
        { ...cfg, workerHandler: processor.kind === "handler" ? processor.what : "", workerCommand: processor.kind === "command" ? processor.what : "", workerApp: "" },
        { queueUrl, groupName: "", logGroupName: "" },
      );
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(stackVars)) env[k] = String(v);
      // No Auto Scaling group and no instance metadata here: the worker must not wait on either.
      delete env.KILN_ASG_NAME;
      delete env.KILN_LIFECYCLE_HOOK;
      delete env.KILN_LOG_GROUP;
      return {
        ...env,
        AWS_REGION: cfg.region,
        AWS_ENDPOINT_URL_SQS: endpoint,
        // fauxqs accepts any keys; static ones keep the SDK from looking for a real profile.
        AWS_ACCESS_KEY_ID: "local",
        AWS_SECRET_ACCESS_KEY: "local",
        SQS_WAIT_TIME: String(Math.min(cfg.sqsWaitTime, LOCAL_WAIT_TIME)),
        SQS_VISIBILITY_TIMEOUT: String(visibilityTimeout),
        WORKER_RETRY_DELAY: String(retryDelay),
        MAX_WORKERS: String(concurrency),
        // The fleet counts "processed" lines, which the worker logs at debug.
        LOG_LEVEL: "debug",
        KILN_METRICS: "off",
        ...options.env,
      };
    },
  };
}

function flagFor(name: string): string {
  if (name === "WORKER_HANDLER") return ": use --handler";
  if (name === "WORKER_COMMAND") return ": use --command";
  return "";
}

/**
 * The caller's environment for the workers (PATH, HOME, locale: what a --command needs), minus any
 * AWS setting, so a developer's real profile or endpoint never reaches a local worker, and minus
 * the worker contract's variables, which come from the stack and the flags alone.
 */
export function inheritedEnv(): Record<string, string> {
  const contract = new Set<string>(WORKER_VARIABLES);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("AWS_") && !contract.has(k)) env[k] = v;
  }
  return env;
}
