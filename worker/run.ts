import * as fs from "node:fs";
import { SQSClient } from "@aws-sdk/client-sqs";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { Consumer } from "./consumer";
import { EXIT } from "./contract";
import { createLogger, Logger } from "./log";
import { MetricsPublisher } from "./metrics";
import { commandProcessor, handlerProcessor } from "./processors";
import { readSettings, WorkerConfigError, WorkerSettings } from "./settings";
import { InstanceMetadata, LifecycleAction, ScaleInWatcher } from "./lifecycle";

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Check the configuration and the handler, then exit without consuming. */
  selfCheck?: boolean;
  /** How often memory is checked against WORKER_MAX_RSS_MB. */
  rssCheckMs?: number;
  /** How often the instance's lifecycle state is checked. */
  scaleInCheckMs?: number;
  /** How often a lifecycle action is kept alive while draining. */
  heartbeatMs?: number;
  /** Clients to use instead of the SDK's own (tests hand in fakes). */
  clients?: { cloudwatch?: CloudWatchClient; autoscaling?: AutoScalingClient };
}

type StopReason = { code: number; why: string };

/** `kiln-worker run`: consumes until told to stop, and returns the exit code that says why it stopped. */
export async function runWorker(opts: RunOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  let settings: WorkerSettings;
  let log: Logger = createLogger("info");
  let processor;
  try {
    settings = readSettings(env);
    log = createLogger(settings.logLevel, settings.stack ? { stack: settings.stack } : {});
    if (!settings.region && !settings.endpoint) {
      throw new WorkerConfigError("AWS_REGION", "is not set: the worker needs the region of its queue");
    }
    processor = settings.handler ? handlerProcessor(settings.handler) : commandProcessor(checkCommand(settings.command!), env);
  } catch (e) {
    if (!(e instanceof WorkerConfigError)) throw e;
    // One line naming the variable; the exit code tells systemd not to restart into the same error.
    log.fatal({ variable: e.variable, exitCode: EXIT.CONFIG_ERROR }, `configuration error: ${e.message}`);
    return EXIT.CONFIG_ERROR;
  }
  if (opts.selfCheck) {
    log.info({ queueUrl: settings.queueUrl, maxWorkers: settings.maxWorkers }, "self-check passed");
    return EXIT.DRAINED;
  }

  const aws = { region: settings.region ?? "us-east-1", credentials: staticCredentials(env) };
  const sqs = new SQSClient({ ...aws, endpoint: settings.endpoint });
  const consumer = new Consumer({
    sqs,
    queueUrl: settings.queueUrl,
    concurrency: settings.maxWorkers,
    maxMessages: settings.maxMessages,
    waitTimeSeconds: settings.waitTimeSeconds,
    visibilityTimeout: settings.visibilityTimeout,
    processingTimeoutMs: settings.processingTimeoutMs,
    retryDelaySeconds: settings.retryDelaySeconds,
    process: processor,
  });
  const metrics = settings.metrics
    ? new MetricsPublisher(opts.clients?.cloudwatch ?? new CloudWatchClient(aws), settings.stack ?? "unknown", (e) =>
        log.warn({ err: e.message }, "could not publish metrics"),
      )
    : undefined;

  let handled = 0;
  let stop!: (r: StopReason) => void;
  const stopped = new Promise<StopReason>((resolve) => (stop = resolve));
  const limits = settings.recycle;

  const countHandled = () => {
    if (limits.maxMessages && ++handled >= limits.maxMessages) {
      stop({ code: EXIT.RECYCLED, why: `handled ${handled} messages (WORKER_MAX_MESSAGES)` });
    }
  };
  consumer.on("processed", (m, ms) => {
    metrics?.recordProcessed(ms);
    log.debug({ messageId: m.MessageId, ms }, "processed");
    countHandled();
  });
  consumer.on("failed", (m, err, retryIn) => {
    metrics?.recordFailed();
    log.warn(
      { messageId: m.MessageId, receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1), retryInSeconds: retryIn, err: err.message },
      "message failed; it returns to the queue",
    );
    countHandled();
  });
  consumer.on("released", (m) => log.info({ messageId: m.MessageId }, "released unfinished message to the queue"));
  consumer.on("error", (err, operation) => log.error({ operation, err: err.message }, "SQS call failed"));

  const timers: NodeJS.Timeout[] = [];
  if (limits.maxLifetimeMs) {
    timers.push(setTimeout(() => stop({ code: EXIT.RECYCLED, why: `ran ${limits.maxLifetimeMs! / 1000} s (WORKER_MAX_LIFETIME)` }), limits.maxLifetimeMs));
  }
  if (limits.maxRssMb) {
    timers.push(
      setInterval(() => {
        const mb = process.memoryUsage.rss() / 2 ** 20;
        if (mb > limits.maxRssMb!) stop({ code: EXIT.RECYCLED, why: `resident memory ${mb.toFixed(0)} MiB above WORKER_MAX_RSS_MB` });
      }, opts.rssCheckMs ?? 5_000),
    );
  }

  const onSignal = (signal: NodeJS.Signals) => stop({ code: EXIT.DRAINED, why: `received ${signal}` });
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);

  let watcher: ScaleInWatcher | undefined;
  const imds = new InstanceMetadata(env.AWS_EC2_METADATA_SERVICE_ENDPOINT);
  if (settings.lifecycle) {
    watcher = new ScaleInWatcher(
      imds,
      () => stop({ code: EXIT.SCALED_IN, why: "the instance is being scaled in" }),
      (e) => log.debug({ err: e.message }, "instance metadata not available"),
      opts.scaleInCheckMs,
    );
    watcher.start();
  }

  log.info(
    { queueUrl: settings.queueUrl, maxWorkers: settings.maxWorkers, batch: settings.maxMessages, processor: settings.handler ? "handler" : "command" },
    "worker started",
  );
  consumer.start();
  metrics?.start();

  const reason = await stopped;
  log.info({ why: reason.why, inFlight: consumer.inFlight, drainTimeoutSeconds: settings.drainTimeoutMs / 1000 }, "draining");
  watcher?.stop();
  timers.forEach((t) => clearTimeout(t));

  let lifecycle: LifecycleAction | undefined;
  let beat: NodeJS.Timeout | undefined;
  const instanceId =
    reason.code === EXIT.SCALED_IN && settings.lifecycle
      ? await imds.get("instance-id").catch((e: Error) => {
          // Drain anyway; the hook's heartbeat timeout lets the instance go without the completion.
          log.error({ err: e.message }, "cannot read the instance id: the lifecycle action will time out instead");
          return undefined;
        })
      : undefined;
  if (instanceId && settings.lifecycle) {
    lifecycle = new LifecycleAction(opts.clients?.autoscaling ?? new AutoScalingClient(aws), { ...settings.lifecycle, instanceId });
    beat = setInterval(
      () => lifecycle!.heartbeat().catch((e: Error) => log.warn({ err: e.message }, "lifecycle heartbeat failed")),
      opts.heartbeatMs ?? 30_000,
    );
  }
  const { released } = await consumer.drain(settings.drainTimeoutMs);
  clearInterval(beat);
  await metrics?.stop();
  if (lifecycle) {
    try {
      await lifecycle.complete();
    } catch (e) {
      // The hook's heartbeat timeout lets the instance go anyway.
      log.error({ err: (e as Error).message }, "could not complete the lifecycle action");
    }
  }
  process.removeListener("SIGTERM", onSignal);
  process.removeListener("SIGINT", onSignal);
  sqs.destroy();
  log.info({ why: reason.why, released, exitCode: reason.code }, "stopped");
  return reason.code;
}

/**
 * Keys given in the worker's own environment (local runs, tests); on an instance there are none and
 * the SDK's default chain finds the instance profile. Read from `env`, which need not be process.env.
 */
function staticCredentials(env: NodeJS.ProcessEnv) {
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim();
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim();
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN?.trim() || undefined };
}

/** An absolute program path that is not executable is a configuration error, found at start. */
function checkCommand(command: string): string {
  const program = command.split(/\s+/)[0];
  if (program.startsWith("/")) {
    try {
      fs.accessSync(program, fs.constants.X_OK);
    } catch {
      throw new WorkerConfigError("WORKER_COMMAND", `runs ${program}, which does not exist or is not executable`);
    }
  }
  return command;
}
