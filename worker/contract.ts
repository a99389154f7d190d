/**
 * The worker's environment contract (docs/architecture.md), shared by the Pulumi program that writes it
 * into SSM and the worker that reads it, so the two cannot drift apart.
 */

/** Variables kiln itself sets from stack config; an application's `kiln:env` may not shadow them. */
export const WORKER_VARIABLES = [
  "SQS_QUEUE_URL",
  "AWS_REGION",
  "AWS_ENDPOINT_URL_SQS",
  "AWS_ENDPOINT_URL",
  "SQS_MAX_MESSAGES",
  "SQS_WAIT_TIME",
  "SQS_VISIBILITY_TIMEOUT",
  "MAX_WORKERS",
  "PROCESSING_TIMEOUT",
  "WORKER_HANDLER",
  "WORKER_COMMAND",
  "WORKER_APP",
  "WORKER_APP_PATH",
  "WORKER_APP_HEALTH_PATH",
  "WORKER_APP_START_TIMEOUT",
  "WORKER_MAX_MESSAGES",
  "WORKER_MAX_RSS_MB",
  "WORKER_MAX_LIFETIME",
  "WORKER_DRAIN_TIMEOUT",
  "WORKER_RETRY_DELAY",
  "WORKER_SCALE_IN_TIMEOUT",
  "LOG_LEVEL",
  "KILN_STACK",
  "KILN_ASG_NAME",
  "KILN_LIFECYCLE_HOOK",
  "KILN_LOG_GROUP",
] as const;

export type WorkerVariable = (typeof WORKER_VARIABLES)[number];

/** Defaults the worker applies when a variable is absent; the stack config uses the same ones. */
export const WORKER_DEFAULTS = {
  SQS_MAX_MESSAGES: 10,
  SQS_WAIT_TIME: 20,
  SQS_VISIBILITY_TIMEOUT: 300,
  PROCESSING_TIMEOUT: 180,
  WORKER_DRAIN_TIMEOUT: 60,
  /** Seconds before a failed message's first retry; doubled on each further receive (seeds: RETRY_DELAY=3). */
  WORKER_RETRY_DELAY: 3,
  /** Path each message is POSTed to in app mode (Elastic Beanstalk sqsd's default HTTP path). */
  WORKER_APP_PATH: "/",
  /** Seconds an app process may take to answer its health check after it starts. */
  WORKER_APP_START_TIMEOUT: 60,
  LOG_LEVEL: "info",
} as const;

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;

/** CloudWatch namespace and metric names the worker publishes; alarms and dashboard read them. */
export const METRICS_NAMESPACE = "Kiln/Worker";
/** Every worker metric carries this dimension, valued with the stack name. */
export const METRIC_DIMENSION = "Stack";
export const METRIC_PROCESSED = "MessagesProcessed";
export const METRIC_FAILED = "MessagesFailed";
export const METRIC_LATENCY = "ProcessingLatency";
export const METRIC_WORKER_FAILURE = "WorkerFailure";

/**
 * Variables kiln gives every app process (app mode) besides the worker's own environment: the port it
 * must listen on (127.0.0.1) and which of the worker's slots it serves.
 */
export const APP_PROCESS_VARIABLES = ["PORT", "KILN_APP_SLOT"] as const;

/**
 * The message attribute `kiln smoke` marks its probe with: the worker logs such a message's outcome
 * at info whatever LOG_LEVEL says, so the check can name the very message even on a quiet stack.
 */
export const SMOKE_ATTRIBUTE = "kiln-smoke";

/** Where user data leaves the pointers `kiln-worker env` needs at boot (SSM prefix, region). */
export const INSTANCE_ENV_FILE = "/etc/kiln/instance.env";
/** The env file `kiln-worker env` writes from SSM and kiln-worker.service reads. */
export const WORKER_ENV_FILE = "/etc/kiln/worker.env";

/** The SSM path that holds a stack's worker environment. */
export function ssmPrefix(stack: string): string {
  return `/kiln/${stack}/worker/`;
}

/** Seconds between the worker's RecordLifecycleActionHeartbeat calls while it drains on scale-in. */
export const SCALE_IN_HEARTBEAT_INTERVAL = 30;

/**
 * WORKER_SCALE_IN_TIMEOUT when none is given: long enough for a message that has just started. A
 * scaled-in instance is held by its lifecycle hook, not by systemd's stop timeout.
 */
export function scaleInBudget(scaleInTimeout: number, processingTimeout: number): number {
  return scaleInTimeout || processingTimeout + 30;
}

/** Name of the ASG lifecycle hook that holds a terminating instance while its worker drains. */
export const DRAIN_LIFECYCLE_HOOK = "kiln-drain";

/**
 * Why the worker stopped. systemd restarts it after any exit but the two it is told not to
 * (RestartPreventExitStatus): a configuration error would only fail again, and a scaled-in instance
 * is about to terminate.
 */
export const EXIT = {
  /** Drained after SIGTERM: every in-flight message finished or was released. */
  DRAINED: 0,
  /** Crashed: an error the worker did not expect. systemd restarts it. */
  CRASHED: 1,
  /** Recycled (message count, memory or lifetime limit): drained, to be started fresh. */
  RECYCLED: 75,
  /** Bad configuration: restarting cannot help. */
  CONFIG_ERROR: 78,
  /** The instance is being scaled in: drained and the lifecycle action completed. */
  SCALED_IN: 79,
} as const;

/**
 * Node flags `kiln-worker run` starts with, everywhere it runs (the unit, `npm run local`, the
 * bench). V8 grows each isolate's young generation (the main thread's and every handler thread's)
 * from 1 MiB towards 16 MiB semi-spaces as it sees a high allocation rate, so a worker's RSS rose by
 * a third over 100,000 messages with no leak: WORKER_MAX_RSS_MB would measure V8's sizing, not the
 * handler's memory. At 4 MiB the RSS grows about 5% and then stays; measured here, the
 * throughput of a no-op handler did not drop (2 MiB cost 10%).
 */
export const WORKER_NODE_FLAGS = ["--max-semi-space-size=4"] as const;

/** Where the AMI puts things (ami/ installs them, systemd units point at them). */
export const INSTALL = {
  /** The worker bundle (`npm run build:worker`): kiln-worker.js runs with plain node. */
  bundleDir: "/opt/kiln/worker",
  /** The pinned Node runtime baked into the image. */
  node: "/opt/kiln/node/bin/node",
  user: "kiln-worker",
  /** The worker's scratch space (the seeds' TEMP_DIR). */
  stateDir: "/var/lib/kiln-worker",
  /** Drop-in that kiln-worker env writes with the machine's sizing. */
  sizingDropIn: "/etc/systemd/system/kiln-worker.service.d/50-sizing.conf",
} as const;
