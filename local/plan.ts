import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, KilnConfig, parseStackConfig } from "../infra/config";
import { readStackFile } from "../infra/stack-file";
import { backlogTarget } from "../infra/scaling-rule";
import type * as WorkerEnvironment from "../infra/worker-environment";
import { WORKER_VARIABLES } from "../worker/contract";
import { defaultMaxWorkers } from "../worker/env/sizing";
import { localStateDir } from "./control-state";
import { checkHandlerFile, checkProgram } from "./preflight";
import { readUnitTimings } from "./unit-timings";
import { UsageError } from "./usage-error";

export { UsageError } from "./usage-error";

export const ROOT = path.resolve(__dirname, "..");
export const DEMO_HANDLER = path.join(ROOT, "worker", "examples", "demo-handler.js");

/** What `npm run local` is asked to do; every field has its default in DEFAULT_OPTIONS or the stack. */
export interface LocalOptions {
  stack: string;
  /** Where Pulumi.<stack>.yaml lives. */
  stackDir: string;
  /** Where the running fleet leaves its record and control socket (`kiln` finds it there). */
  stateDir: string;
  /** Demo messages fed at start. */
  messages: number;
  /** Demo messages per second; 0 sends them all at once. */
  rate: number;
  /**
   * Share of the demo messages whose body asks the handler to fail; undefined: DEMO_FAIL_RATE with
   * the demo handler, 0 with your own handler, command or app (which would only see odd bodies).
   */
  failRate?: number;
  handler?: string;
  command?: string;
  /** WORKER_APP: a long-lived HTTP app, one process per slot, each on its own PORT. */
  app?: string;
  appHealthPath?: string;
  appStartTimeout?: number;
  /** Extra worker environment; wins over the stack's kiln:env. */
  env: Record<string, string>;
  /** MAX_WORKERS of each worker process; undefined: the stack's, or what an instance with this machine's vCPUs would run. */
  concurrency?: number;
  minSize?: number;
  maxSize?: number;
  /** Stack seconds per local second, applied to the stack's cooldowns, latency, visibility, retry and restart delays. */
  speed: number;
  /** Local seconds; override what --speed makes of the stack's values. */
  scaleOutCooldown?: number;
  scaleInCooldown?: number;
  acceptableLatency?: number;
  avgProcessingMs?: number;
  /** TCP port of the embedded SQS on 127.0.0.1; undefined: a free one. */
  port?: number;
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

/** Share of the demo handler's messages that ask to fail, so the DLQ has something to show. */
export const DEMO_FAIL_RATE = 0.03;
/** The most demo messages: above the seeds' 256,196-message backlog. */
export const MAX_MESSAGES = 1_000_000;
/** Long-poll seconds of local workers: a stopped worker's abandoned poll can hide a message this long. */
export const LOCAL_WAIT_TIME = 1;
/** Below this a slow visibility extension could let a message still being processed show again. */
const MIN_LOCAL_VISIBILITY = 5;
/** No restart sooner than this, however fast --speed runs: a crash loop must stay readable. */
const MIN_RESTART_DELAY_MS = 500;

export const DEFAULT_OPTIONS: LocalOptions = {
  stack: "dev",
  stackDir: ROOT,
  stateDir: localStateDir(ROOT),
  messages: 200,
  rate: 0,
  env: {},
  speed: 20,
  keepRunning: false,
  plain: false,
  tickMs: 1000,
  plainEveryMs: 2000,
};

export type ProcessorKind = "handler" | "command" | "app";

/** The stack's settings as this machine runs them. Every time is in local seconds. */
export interface FleetPlan {
  options: LocalOptions;
  cfg: KilnConfig;
  stackFile: string;
  queueName: string;
  dlqName: string;
  visibilityTimeout: number;
  /** WORKER_RETRY_DELAY the workers get: the stack's kiln:retryDelay, compressed. */
  retryDelay: number;
  failRate: number;
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
  /** kiln-worker.service's RestartSec, compressed: the delay before a crashed worker starts again. */
  restartDelayMs: number;
  /** Its StartLimitBurst crashes within this window and the worker is not restarted. */
  crashLimit: number;
  crashWindowMs: number;
  concurrency: number;
  /** Where the concurrency came from, for the header. */
  concurrencyFrom: string;
  /** What each worker runs, for the header. */
  processor: { kind: ProcessorKind; what: string; demo: boolean };
  logFile: string;
  workerEnv(queueUrl: string, endpoint: string): Record<string, string>;
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
  "WORKER_APP",
  "WORKER_APP_HEALTH_PATH",
  "WORKER_APP_START_TIMEOUT",
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
  const modes = (["handler", "command", "app"] as const).filter((m) => options[m] !== undefined);
  if (modes.length > 1) throw new UsageError(`${modes.map((m) => `--${m}`).join(" and ")}: give one of them, not ${modes.length === 2 ? "both" : "all"}`);

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
  const retryDelay = cfg.retryDelay === 0 ? 0 : Math.max(1, Math.round(cfg.retryDelay / s));
  const instanceWorkers = defaultMaxWorkers({ vcpus: os.availableParallelism(), totalMemoryBytes: os.totalmem() });
  const concurrency = options.concurrency ?? (cfg.maxWorkers || instanceWorkers);
  const concurrencyFrom =
    options.concurrency !== undefined ? "--concurrency" : cfg.maxWorkers ? "kiln:maxWorkers" : `vCPUs − 1, as an instance with ${os.availableParallelism()} vCPUs would run`;

  // The stack's handler, command or app is a path on an instance; locally the demo handler stands
  // in unless a flag names one of this machine's.
  const processor: FleetPlan["processor"] = options.command
    ? { kind: "command", what: options.command, demo: false }
    : options.app
      ? { kind: "app", what: options.app, demo: false }
      : { kind: "handler", what: path.resolve(options.handler ?? DEMO_HANDLER), demo: !options.handler };
  if (processor.kind === "handler") checkHandlerFile("--handler", processor.what);
  else checkProgram(`--${processor.kind}`, processor.what, { ...process.env, ...options.env });

  const unit = readUnitTimings();
  const restartDelayMs = Math.max(MIN_RESTART_DELAY_MS, (unit.restartSec * 1000) / s);
  const logFile = path.resolve(options.logFile ?? path.join(ROOT, ".kiln", "local", `${options.stack}-workers.log`));
  const appHealthPath = options.appHealthPath ?? cfg.workerAppHealthPath;
  const appStartTimeout = options.appStartTimeout ?? cfg.workerAppStartTimeout;

  return {
    options,
    cfg,
    stackFile: stack.file,
    queueName: `kiln-${options.stack}`,
    dlqName: `kiln-${options.stack}-dlq`,
    visibilityTimeout,
    retryDelay,
    failRate: options.failRate ?? (processor.demo ? DEMO_FAIL_RATE : 0),
    scaling: {
      min,
      max,
      target: backlogTarget(acceptableLatency, avgProcessingMs),
      acceptableLatency,
      avgProcessingMs,
      scaleOutCooldownMs: (options.scaleOutCooldown ?? cfg.scaleOutCooldown / s) * 1000,
      scaleInCooldownMs: (options.scaleInCooldown ?? cfg.scaleInCooldown / s) * 1000,
    },
    restartDelayMs,
    crashLimit: unit.startLimitBurst,
    // The unit's window in restart delays (300 s / 10 s), so a crash loop is stopped after the
    // same number of tries whatever --speed does to the delay.
    crashWindowMs: (unit.startLimitIntervalSec / unit.restartSec) * restartDelayMs,
    concurrency,
    concurrencyFrom,
    processor,
    logFile,
    workerEnv(queueUrl, endpoint) {
      // Required here, not at the top: it loads Pulumi, which parsing flags does not need.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { workerVariables } = require("../infra/worker-environment") as typeof WorkerEnvironment;
      const stackVars = workerVariables(
        {
          ...cfg,
          workerHandler: processor.kind === "handler" ? processor.what : "",
          workerCommand: processor.kind === "command" ? processor.what : "",
          workerApp: processor.kind === "app" ? processor.what : "",
          workerAppHealthPath: processor.kind === "app" ? appHealthPath : "",
          workerAppStartTimeout: appStartTimeout,
        },
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
        // The SDK's notice that it will need Node 22 in 2027, printed by every worker on Node 20:
        // said once in the README, not once per worker start. Other warnings still show.
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
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
  if (name === "WORKER_APP") return ": use --app";
  if (name === "WORKER_APP_HEALTH_PATH") return ": use --app-health-path";
  if (name === "WORKER_APP_START_TIMEOUT") return ": use --app-start-timeout";
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
