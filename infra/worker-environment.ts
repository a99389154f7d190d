import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { KilnConfig } from "./config";
import { DRAIN_LIFECYCLE_HOOK, WorkerVariable } from "../worker/contract";

export interface WorkerEnvironmentArgs {
  /** SSM path, ending in "/", under which every variable becomes one parameter. */
  prefix: string;
  /** Variables stored as String parameters. */
  plain: Record<string, pulumi.Input<string>>;
  /** Variables stored as SecureString parameters; their values must be secret Outputs. */
  secret: Record<string, pulumi.Output<string>>;
  /** The stack's own KMS key, which only the worker role may decrypt with (never aws/ssm). */
  keyArn: pulumi.Input<string>;
  tags: Record<string, string>;
}

/**
 * The worker's environment in SSM Parameter Store, one parameter per variable. Instances read it at
 * boot; `digest` changes whenever any parameter's value does, so putting it in the launch template
 * rolls the fleet onto new values without anyone logging in, and without any value leaving SSM.
 */
export class WorkerEnvironment extends pulumi.ComponentResource {
  readonly parameters: aws.ssm.Parameter[] = [];
  /** SHA-256 over every parameter's name, type and version; SSM bumps a version on each value change. */
  readonly digest: pulumi.Output<string>;

  constructor(name: string, args: WorkerEnvironmentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:worker:WorkerEnvironment", name, {}, opts);

    const declare = (variable: string, value: pulumi.Input<string>, type: "String" | "SecureString") =>
      new aws.ssm.Parameter(
        `${name}-${variable}`,
        {
          name: `${args.prefix}${variable}`,
          type,
          tier: "Standard",
          value,
          keyId: type === "SecureString" ? args.keyArn : undefined,
          tags: args.tags,
        },
        { parent: this },
      );

    for (const [variable, value] of Object.entries(args.plain).sort(([a], [b]) => a.localeCompare(b))) {
      this.parameters.push(declare(variable, value, "String"));
    }
    for (const [variable, value] of Object.entries(args.secret).sort(([a], [b]) => a.localeCompare(b))) {
      this.parameters.push(declare(variable, pulumi.secret(value), "SecureString"));
    }

    this.digest = pulumi
      .all(this.parameters.map((p) => pulumi.all([p.name, p.type, p.version])))
      .apply((rows) => createHash("sha256").update(rows.map(([n, t, v]) => `${n} ${t} ${v}`).join("\n")).digest("hex"));

    this.registerOutputs({ digest: this.digest });
  }
}

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
