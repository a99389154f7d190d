import type * as pulumi from "@pulumi/pulumi";
import type { KilnConfig } from "./config";
import { DRAIN_LIFECYCLE_HOOK, WorkerVariable } from "../worker/contract";

/** The contract variables a stack's config sets, then the application's own plain variables. */
export function workerVariables(
  cfg: Pick<
    KilnConfig,
    | "stack" | "sqsMaxMessages" | "sqsWaitTime" | "visibilityTimeout" | "processingTimeout" | "drainTimeout" | "scaleInTimeout"
    | "retryDelay" | "logLevel"
    | "maxWorkers" | "workerMaxMessages" | "workerMaxRssMb" | "workerMaxLifetime" | "workerHandler" | "workerCommand"
    | "workerApp" | "workerAppHealthPath" | "workerAppStartTimeout" | "env"
  >,
  refs: { queueUrl: pulumi.Input<string>; groupName: string; logGroupName: string },
): Record<string, pulumi.Input<string>> {
  const vars: Partial<Record<WorkerVariable, pulumi.Input<string>>> = {
    SQS_QUEUE_URL: refs.queueUrl,
    SQS_MAX_MESSAGES: String(cfg.sqsMaxMessages),
    SQS_WAIT_TIME: String(cfg.sqsWaitTime),
    SQS_VISIBILITY_TIMEOUT: String(cfg.visibilityTimeout),
    PROCESSING_TIMEOUT: String(cfg.processingTimeout),
    WORKER_DRAIN_TIMEOUT: String(cfg.drainTimeout),
    WORKER_SCALE_IN_TIMEOUT: String(cfg.scaleInTimeout),
    WORKER_RETRY_DELAY: String(cfg.retryDelay),
    LOG_LEVEL: cfg.logLevel,
    KILN_STACK: cfg.stack,
    KILN_ASG_NAME: refs.groupName,
    KILN_LIFECYCLE_HOOK: DRAIN_LIFECYCLE_HOOK,
    KILN_LOG_GROUP: refs.logGroupName,
  };
  // 0 and "" mean unset: the worker then applies its own default (vCPUs) or leaves the limit off.
  const optional: [WorkerVariable, number | string][] = [
    ["MAX_WORKERS", cfg.maxWorkers],
    ["WORKER_MAX_MESSAGES", cfg.workerMaxMessages],
    ["WORKER_MAX_RSS_MB", cfg.workerMaxRssMb],
    ["WORKER_MAX_LIFETIME", cfg.workerMaxLifetime],
    ["WORKER_HANDLER", cfg.workerHandler],
    ["WORKER_COMMAND", cfg.workerCommand],
    ["WORKER_APP", cfg.workerApp],
    ["WORKER_APP_HEALTH_PATH", cfg.workerAppHealthPath],
  ];
  if (cfg.workerApp) vars.WORKER_APP_START_TIMEOUT = String(cfg.workerAppStartTimeout);
  for (const [name, value] of optional) if (value) vars[name] = String(value);
  return { ...cfg.env, ...vars };
}
