import { AutoScalingClient, SetInstanceHealthCommand } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient, PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { EXIT, METRICS_NAMESPACE, METRIC_DIMENSION, METRIC_WORKER_FAILURE } from "../contract";
import { InstanceMetadata } from "../lifecycle";
import { Logger } from "../log";
import { bootLogger } from "./boot-log";
import { RetriesExhausted, RetryClock, RetryPolicy, describeError, retryUntilDeadline } from "./retry";

export interface ReportFailureOptions {
  /** The OnFailure unit's environment: MONITOR_* from systemd, instance.env and worker.env. */
  env?: Record<string, string | undefined>;
  cloudwatch?: CloudWatchClient;
  autoscaling?: AutoScalingClient;
  /** Defaults to IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT, or the link-local address. */
  imds?: InstanceMetadata;
  retry?: Partial<RetryPolicy>;
  clock?: RetryClock;
  log?: Logger;
}

/** What systemd tells an OnFailure= unit about the unit that failed (systemd 249 and later). */
export interface MonitoredFailure {
  unit?: string;
  /** "exit-code", "signal", "core-dump", "timeout", "start-limit-hit", "oom-kill", ... */
  result?: string;
  /** "exited", "killed" or "dumped". */
  exitCode?: string;
  /** The exit status when exited, the signal's name when killed. */
  exitStatus?: string;
}

export function monitoredFailure(env: Record<string, string | undefined>): MonitoredFailure {
  return {
    unit: env.MONITOR_UNIT,
    result: env.MONITOR_SERVICE_RESULT,
    exitCode: env.MONITOR_EXIT_CODE,
    exitStatus: env.MONITOR_EXIT_STATUS,
  };
}

/**
 * Whether replacing the instance could help. A configuration error (the worker's or kiln-worker env's)
 * would recur on every new instance, and a scaled-in worker's instance is leaving anyway; anything
 * else (a crash loop, an OOM kill, a hung stop) may be this instance, so Auto Scaling replaces it.
 */
export function shouldReplaceInstance(f: MonitoredFailure): boolean {
  if (f.exitCode !== undefined && f.exitCode !== "exited") return true;
  const status = Number(f.exitStatus);
  return status !== EXIT.CONFIG_ERROR && status !== EXIT.SCALED_IN;
}

/** The stack's name: from the SSM prefix instance.env names (kiln-worker-failed@ reads nothing else), or KILN_STACK. */
function stackName(env: Record<string, string | undefined>): string {
  return env.KILN_STACK?.trim() || /^\/kiln\/([^/]+)\/worker\/?$/.exec(env.KILN_SSM_PREFIX?.trim() ?? "")?.[1] || "unknown";
}

const why = (e: unknown) => (e instanceof RetriesExhausted ? e.message : describeError(e));

/** Short: the unit runs while systemd has already given up, and the instance may be replaced soon. */
export const REPORT_RETRY: RetryPolicy = { deadlineMs: 60_000, baseDelayMs: 500, maxDelayMs: 5_000 };

/**
 * `kiln-worker report-failure`, run by kiln-worker-failed@.service when systemd gives up on the worker
 * (or on kiln-worker-env.service): logs why, counts a WorkerFailure metric the alarms watch, and,
 * unless restarting elsewhere cannot help, marks the instance unhealthy so Auto Scaling replaces it.
 * Returns EXIT.CRASHED if any report could not be made.
 */
export async function runReportFailure(opts: ReportFailureOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? bootLogger(env, "report-failure");
  const failure = monitoredFailure(env);
  const stack = stackName(env);
  const replace = shouldReplaceInstance(failure);
  const unit = failure.unit ?? "the worker";
  const how = [failure.result, failure.exitCode && `${failure.exitCode} ${failure.exitStatus ?? ""}`.trim()].filter(Boolean).join(", ");
  log.error(
    { ...failure, stack, replaceInstance: replace },
    `systemd gave up on ${unit}${how ? ` (${how})` : ""}: ${
      replace
        ? "marking this instance unhealthy so Auto Scaling replaces it"
        : "reporting only, since a configuration error would stop a new instance the same way; fix the stack's config and run pulumi up"
    }`,
  );

  const region = env.AWS_REGION?.trim() || undefined;
  if (!region && !(opts.cloudwatch && opts.autoscaling)) {
    log.error({ exitCode: EXIT.CONFIG_ERROR }, "report-failure could not report: AWS_REGION is not set (instance.env sets it)");
    return EXIT.CONFIG_ERROR;
  }
  const cloudwatch = opts.cloudwatch ?? new CloudWatchClient({ region });
  const autoscaling = opts.autoscaling ?? new AutoScalingClient({ region });
  const imds = opts.imds ?? new InstanceMetadata(env.AWS_EC2_METADATA_SERVICE_ENDPOINT);
  const withRetry = <T>(what: string, call: () => Promise<T>) =>
    retryUntilDeadline(call, {
      policy: { ...REPORT_RETRY, ...opts.retry },
      clock: opts.clock,
      isRetryable: (e) => !(e instanceof Error && e.name === "ValidationError"),
      onRetry: (e, attempt, delayMs) => log.warn({ attempt, delayMs, error: describeError(e) }, `${what} failed; retrying`),
    });

  let ok = true;
  try {
    await withRetry("PutMetricData", () =>
      cloudwatch.send(
        new PutMetricDataCommand({
          Namespace: METRICS_NAMESPACE,
          MetricData: [
            { MetricName: METRIC_WORKER_FAILURE, Dimensions: [{ Name: METRIC_DIMENSION, Value: stack }], Unit: "Count", Value: 1, Timestamp: new Date() },
          ],
        }),
      ),
    );
  } catch (e) {
    ok = false;
    log.error({ operation: "PutMetricData", error: why(e) }, `could not publish ${METRICS_NAMESPACE} ${METRIC_WORKER_FAILURE}: ${why(e)}`);
  }

  if (replace) {
    let instanceId: string | undefined;
    try {
      instanceId = await withRetry("IMDS instance-id", () => imds.get("instance-id"));
      await withRetry("SetInstanceHealth", () =>
        autoscaling.send(
          // The grace period would swallow the call: a crash loop at boot gives up within it.
          new SetInstanceHealthCommand({ InstanceId: instanceId, HealthStatus: "Unhealthy", ShouldRespectGracePeriod: false }),
        ),
      );
      log.info({ instanceId }, `marked ${instanceId} unhealthy`);
    } catch (e) {
      ok = false;
      const operation = instanceId ? "SetInstanceHealth" : "IMDS instance-id";
      log.error({ operation, instanceId, error: why(e) }, `could not mark this instance unhealthy: ${operation} failed: ${why(e)}`);
    }
  }

  if (!opts.cloudwatch) cloudwatch.destroy();
  if (!opts.autoscaling) autoscaling.destroy();
  return ok ? EXIT.DRAINED /* the contract's 0 */ : EXIT.CRASHED;
}
