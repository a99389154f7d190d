import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { AppPool } from "./app-pool";
import { CommandRunner } from "./command-runner";
import { Consumer, type MessageSource } from "./consumer";
import { EXIT, SCALE_IN_HEARTBEAT_INTERVAL, SMOKE_ATTRIBUTE } from "./contract";
import { HandlerPool, handlerThreads } from "./handler-pool";
import { InstanceMetadata, LifecycleAction, ScaleInWatcher } from "./lifecycle";
import { createLogger, Logger } from "./log";
import { MetricsPublisher } from "./metrics";
import { Recycler } from "./recycler";
import { staticCredentials, workerSqsClient } from "./sqs-client";
import { HandlerFailed, HandlerRuntime } from "./runtime";
import { readSettings, WorkerConfigError, WorkerSettings } from "./settings";

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Check the configuration and the handler, command or app, then exit without consuming. */
  selfCheck?: boolean;
  /** How often memory, age and message counts are checked against the recycle limits. */
  recycleCheckMs?: number;
  /** How often the instance's lifecycle state is checked. */
  scaleInCheckMs?: number;
  /** How often a lifecycle action is kept alive while draining. */
  heartbeatMs?: number;
  /** How long a handler, command or app process may go on after being told to stop. */
  killGraceMs?: number;
  /** Turn an exception kiln itself did not catch into a drain and EXIT.CRASHED (the CLI does; tests keep mocha's). */
  catchUncaught?: boolean;
  /** Clients to use instead of the SDK's own (tests hand in fakes). */
  clients?: { cloudwatch?: CloudWatchClient; autoscaling?: AutoScalingClient };
}

type StopReason = { code: number; why: string; scaleIn?: boolean };

const KILL_GRACE_MS = 5_000;

/** The handler runtime the settings ask for: threads, a process per message, or app processes. */
function createRuntime(settings: WorkerSettings, env: NodeJS.ProcessEnv, log: Logger, killGraceMs: number): HandlerRuntime {
  if (settings.handler) {
    return new HandlerPool({
      modulePath: settings.handler,
      maxWorkers: settings.maxWorkers,
      threads: handlerThreads(settings.maxWorkers),
      abortGraceMs: killGraceMs,
      consume: {
        queueUrl: settings.queueUrl,
        maxMessages: settings.maxMessages,
        waitTimeSeconds: settings.waitTimeSeconds,
        visibilityTimeout: settings.visibilityTimeout,
        processingTimeoutMs: settings.processingTimeoutMs,
        retryDelaySeconds: settings.retryDelaySeconds,
        region: settings.region,
        endpoint: settings.endpoint,
        budget: settings.recycle.maxMessages,
        maxRssBytes: settings.recycle.maxRssMb ? settings.recycle.maxRssMb * 2 ** 20 : undefined,
      },
      log,
      env,
    });
  }
  if (settings.command) return new CommandRunner({ command: settings.command, maxWorkers: settings.maxWorkers, killGraceMs, env, log });
  return new AppPool({
    command: settings.app!.command,
    maxWorkers: settings.maxWorkers,
    path: settings.app!.path,
    healthPath: settings.app!.healthPath,
    startTimeoutMs: settings.app!.startTimeoutMs,
    queueUrl: settings.queueUrl,
    killGraceMs,
    env,
    log,
  });
}

/** SQS's answer for a queue URL that names no queue (the JSON protocol's name and the query protocol's code). */
const isQueueMissing = (e: Error) =>
  e.name === "QueueDoesNotExist" || /NonExistentQueue|QueueDoesNotExist/.test(`${(e as { Code?: string }).Code ?? ""} ${e.message}`);

/** `kiln-worker run`: consumes until told to stop, and returns the exit code that says why it stopped. */
export async function runWorker(opts: RunOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const killGraceMs = opts.killGraceMs ?? KILL_GRACE_MS;
  let settings: WorkerSettings;
  let log: Logger = createLogger("info");
  let runtime: HandlerRuntime;
  const configError = (e: WorkerConfigError) => {
    // One line naming the variable; the exit code tells systemd not to restart into the same error.
    log.fatal({ variable: e.variable, exitCode: EXIT.CONFIG_ERROR }, `configuration error: ${e.message}`);
    return EXIT.CONFIG_ERROR;
  };
  try {
    settings = readSettings(env);
    log = createLogger(settings.logLevel, settings.stack ? { stack: settings.stack } : {});
    if (!settings.region && !settings.endpoint) {
      throw new WorkerConfigError("AWS_REGION", "is not set: the worker needs the region of its queue");
    }
    runtime = createRuntime(settings, env, log, killGraceMs);
    await runtime.start();
  } catch (e) {
    if (!(e instanceof WorkerConfigError)) throw e;
    return configError(e);
  }
  if (opts.selfCheck) {
    await runtime.stop();
    log.info({ queueUrl: settings.queueUrl, maxWorkers: settings.maxWorkers, processor: runtime.kind }, "self-check passed");
    return EXIT.DRAINED;
  }

  const aws = { region: settings.region ?? "us-east-1", credentials: staticCredentials(env) };
  const sqs = workerSqsClient({ ...aws, endpoint: settings.endpoint });
  // Handler threads consume the queue themselves; commands and app processes are fed by a Consumer here.
  const consumer: MessageSource =
    runtime.source ??
    new Consumer({
      sqs,
      queueUrl: settings.queueUrl,
      concurrency: settings.maxWorkers,
      maxMessages: settings.maxMessages,
      waitTimeSeconds: settings.waitTimeSeconds,
      visibilityTimeout: settings.visibilityTimeout,
      processingTimeoutMs: settings.processingTimeoutMs,
      retryDelaySeconds: settings.retryDelaySeconds,
      process: runtime.process!,
      capacity: () => runtime.capacity(),
    });
  const metrics = settings.metrics
    ? new MetricsPublisher(opts.clients?.cloudwatch ?? new CloudWatchClient(aws), settings.stack ?? "unknown", (e) =>
        log.warn({ err: e.message }, "could not publish metrics"),
      )
    : undefined;

  let stop!: (r: StopReason) => void;
  const stopped = new Promise<StopReason>((resolve) => (stop = resolve));

  const recycler = new Recycler(
    runtime,
    settings.recycle,
    log,
    (why) => stop({ code: EXIT.RECYCLED, why }),
    opts.recycleCheckMs,
  );
  // An operator's probe (kiln smoke) is logged whatever the level: it is what they are waiting for.
  const probeLog = log.child({}, { level: log.isLevelEnabled("info") ? log.level : "info" });
  consumer.on("processed", (m, ms) => {
    metrics?.recordProcessed(ms);
    const smoke = m.MessageAttributes?.[SMOKE_ATTRIBUTE]?.StringValue;
    if (smoke) probeLog.info({ messageId: m.MessageId, ms, smoke }, "processed");
    else log.debug({ messageId: m.MessageId, ms }, "processed");
    recycler.messageDone();
  });
  consumer.on("failed", (m, err, retryIn) => {
    metrics?.recordFailed();
    log.warn(
      {
        messageId: m.MessageId,
        receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
        retryInSeconds: retryIn,
        err: err.message,
        ...(err instanceof HandlerFailed && err.stderr.length ? { stderr: err.stderr } : {}),
      },
      "message failed; it returns to the queue",
    );
    recycler.messageDone();
  });
  consumer.on("released", (m) => log.info({ messageId: m.MessageId }, "released unfinished message to the queue"));
  let queueMissingSince: number | undefined;
  consumer.on("polled", () => (queueMissingSince = undefined));
  consumer.on("error", (err, operation) => {
    log.error({ operation, err: err.message }, "SQS call failed");
    if (operation !== "ReceiveMessage" || !isQueueMissing(err)) return;
    queueMissingSince ??= Date.now();
    if (Date.now() - queueMissingSince >= settings.queueWaitMs) {
      stop({
        code: EXIT.CONFIG_ERROR,
        why: `configuration error: SQS_QUEUE_URL names a queue that does not exist (${settings.queueUrl}), still after ${settings.queueWaitMs / 1000} s`,
      });
    }
  });
  runtime.on("capacity", () => consumer.wake());
  runtime.on("config-error", (e) => stop({ code: EXIT.CONFIG_ERROR, why: `configuration error: ${e.message}` }));
  runtime.on("fatal", (e) => stop({ code: EXIT.CRASHED, why: e.message }));
  runtime.on("recycled", (unit, why) => log.info({ unit: unit.label, handled: unit.handled }, `replaced ${unit.label}: ${why}`));

  // A second signal ends the drain's wait: what is still running goes back to the queue at once.
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals === 1) return stop({ code: EXIT.DRAINED, why: `received ${signal}` });
    log.warn({ signal, inFlight: consumer.inFlight, openReceives: consumer.openReceives }, "second signal: releasing in-flight messages now");
    consumer.hurry(`received ${signal} again`);
  };
  // kiln's own bug, not a handler's (handlers run in threads and processes): what is in flight goes back.
  const onUncaught = (e: Error) => {
    log.fatal({ err: e.stack ?? e.message, exitCode: EXIT.CRASHED }, "worker crashed: releasing in-flight messages");
    stop({ code: EXIT.CRASHED, why: `uncaught exception: ${e.message}` });
    consumer.hurry("the worker crashed");
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  if (opts.catchUncaught) process.on("uncaughtException", onUncaught);

  // Started by something other than init (the local fleet, a shell), the worker drains when that
  // goes away, even by SIGKILL, instead of polling on as an orphan. Under systemd its parent is 1.
  const parent = process.ppid;
  const orphanWatch =
    parent > 1
      ? setInterval(() => process.ppid !== parent && stop({ code: EXIT.DRAINED, why: `its parent process ${parent} is gone` }), 1_000).unref()
      : undefined;

  let watcher: ScaleInWatcher | undefined;
  const imds = new InstanceMetadata(env.AWS_EC2_METADATA_SERVICE_ENDPOINT);
  if (settings.lifecycle) {
    watcher = new ScaleInWatcher(
      imds,
      () => stop({ code: EXIT.SCALED_IN, why: "the instance is being scaled in", scaleIn: true }),
      (e) => log.debug({ err: e.message }, "instance metadata not available"),
      opts.scaleInCheckMs,
    );
    watcher.start();
  }

  log.info(
    { queueUrl: settings.queueUrl, maxWorkers: settings.maxWorkers, batch: settings.maxMessages, processor: runtime.kind },
    "worker started",
  );
  consumer.start();
  metrics?.start();
  recycler.start();

  const reason = await stopped;
  const drainMs = reason.scaleIn ? settings.scaleInTimeoutMs : settings.drainTimeoutMs;
  log.info({ why: reason.why, inFlight: consumer.inFlight, drainTimeoutSeconds: drainMs / 1000 }, "draining");
  watcher?.stop();
  clearInterval(orphanWatch);
  recycler.stop();
  runtime.windDown();

  let lifecycle: LifecycleAction | undefined;
  let beat: NodeJS.Timeout | undefined;
  const instanceId =
    reason.scaleIn && settings.lifecycle
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
      opts.heartbeatMs ?? SCALE_IN_HEARTBEAT_INTERVAL * 1000,
    );
  }
  const { released } = await consumer.drain(drainMs);
  await runtime.stop();
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
  process.removeListener("uncaughtException", onUncaught);
  sqs.destroy();
  if (reason.code === EXIT.CONFIG_ERROR) log.fatal({ exitCode: reason.code, released }, reason.why);
  else log.info({ why: reason.why, released, exitCode: reason.code }, "stopped");
  return reason.code;
}
