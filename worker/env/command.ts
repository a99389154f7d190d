import * as os from "node:os";
import { SSMClient } from "@aws-sdk/client-ssm";
import { EXIT, INSTALL, WORKER_ENV_FILE } from "../contract";
import { Logger } from "../log";
import { bootLogger } from "./boot-log";
import { EnvFileError, renderEnvFile, writeFileAtomic } from "./env-file";
import { Machine, SizingOverrideError, defaultMaxWorkers, renderSizingDropIn, resourceLimits } from "./sizing";
import { NoParametersError, WorkerParameters, normalizePrefix, readWorkerParameters } from "./ssm-parameters";
import { RetriesExhausted, RetryClock, RetryPolicy, describeError, retryUntilDeadline } from "./retry";

// cli.ts loads both boot-time commands from this module.
export { runReportFailure } from "./report-failure";
export type { ReportFailureOptions } from "./report-failure";

/** The contract's clean exit (0): `env` finished its job. */
const DONE: number = EXIT.DRAINED;

export interface EnvCommandOptions {
  /** Where KILN_SSM_PREFIX and AWS_REGION come from (on an instance: instance.env via the unit). */
  env?: Record<string, string | undefined>;
  /** Defaults to an SSMClient for AWS_REGION with the instance role's credentials. */
  ssm?: SSMClient;
  envFile?: string;
  sizingDropIn?: string;
  /** Defaults to this machine: os.cpus().length and os.totalmem(). */
  machine?: Machine;
  retry?: Partial<RetryPolicy>;
  clock?: RetryClock;
  log?: Logger;
}

/**
 * Long enough to ride out a boot where the network, the instance role's credentials or a fresh
 * stack's parameters are a little late; kiln-worker-env.service's TimeoutStartSec stays above it.
 */
export const ENV_RETRY: RetryPolicy = { deadlineMs: 180_000, baseDelayMs: 500, maxDelayMs: 20_000 };

/** Errors another attempt cannot fix: the request itself is malformed. */
const NOT_RETRYABLE = new Set(["ValidationException"]);
/**
 * Still failing at the deadline, these are the stack's configuration, not this instance: a new
 * instance would fail the same way, so the exit must not get this one replaced (EXIT.CONFIG_ERROR).
 * AccessDenied is retried first because a fresh role's permissions take a moment to apply.
 */
const CONFIG_ERRORS = new Set(["NoParametersError", "AccessDeniedException", "ValidationException", "InvalidKeyId"]);

const errorName = (e: unknown) => (e instanceof Error ? e.name : typeof e);

/**
 * `kiln-worker env`: writes the worker's environment from SSM to WORKER_ENV_FILE and this machine's
 * sizing to the systemd drop-in, before kiln-worker.service starts. Returns a process exit code.
 */
export async function runEnvCommand(opts: EnvCommandOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? bootLogger(env, "env");
  const envFile = opts.envFile ?? WORKER_ENV_FILE;
  const dropIn = opts.sizingDropIn ?? INSTALL.sizingDropIn;

  const prefix = normalizePrefix(env.KILN_SSM_PREFIX);
  if (!prefix) {
    const problem = env.KILN_SSM_PREFIX?.trim() ? `is not an SSM path (got ${JSON.stringify(env.KILN_SSM_PREFIX)})` : "is not set";
    log.error({ exitCode: EXIT.CONFIG_ERROR }, `kiln-worker env failed: KILN_SSM_PREFIX ${problem}; user data writes it to the instance env file, like /kiln/<stack>/worker/`);
    return EXIT.CONFIG_ERROR;
  }
  const region = env.AWS_REGION?.trim() || undefined;
  if (!region && !opts.ssm) {
    log.error({ exitCode: EXIT.CONFIG_ERROR }, "kiln-worker env failed: AWS_REGION is not set; user data writes it next to KILN_SSM_PREFIX");
    return EXIT.CONFIG_ERROR;
  }

  const ssm = opts.ssm ?? new SSMClient({ region });
  let read: WorkerParameters;
  try {
    read = await retryUntilDeadline(() => readWorkerParameters(ssm, prefix), {
      policy: { ...ENV_RETRY, ...opts.retry },
      clock: opts.clock,
      isRetryable: (e) => !NOT_RETRYABLE.has(errorName(e)),
      onRetry: (e, attempt, delayMs) =>
        log.warn({ attempt, delayMs, error: describeError(e) }, `reading SSM ${prefix} failed; retrying`),
    });
  } catch (e) {
    const gaveUp = e instanceof RetriesExhausted ? e : new RetriesExhausted(e, 1, 0);
    const exitCode = CONFIG_ERRORS.has(errorName(gaveUp.lastError)) ? EXIT.CONFIG_ERROR : EXIT.CRASHED;
    const what = gaveUp.lastError instanceof NoParametersError ? `found no parameters under ${prefix}` : `GetParametersByPath ${prefix} failed`;
    log.error(
      { exitCode, operation: "GetParametersByPath", prefix, region, error: errorName(gaveUp.lastError), attempts: gaveUp.attempts, elapsedMs: gaveUp.elapsedMs },
      `kiln-worker env failed: SSM ${what} in ${region ?? "the client's region"}: ${gaveUp.message}`,
    );
    return exitCode;
  } finally {
    if (!opts.ssm) ssm.destroy();
  }

  const vars = { ...read.variables };
  if (read.skipped.length) log.warn({ skipped: read.skipped }, "parameters that cannot be environment variable names were left out");
  // The worker's SDK clients need the region, and worker.env is all kiln-worker.service reads.
  if (vars.AWS_REGION === undefined && region) vars.AWS_REGION = region;

  const machine = opts.machine ?? { vcpus: os.cpus().length, totalMemoryBytes: os.totalmem() };
  const maxWorkersFrom = vars.MAX_WORKERS?.trim() ? "ssm" : "machine";
  if (maxWorkersFrom === "machine") vars.MAX_WORKERS = String(defaultMaxWorkers(machine));

  try {
    const limits = resourceLimits(machine, vars);
    const header = [`Written by kiln-worker env from SSM ${prefix} at boot; do not edit: it is rewritten at every boot.`];
    await writeFileAtomic(envFile, renderEnvFile(vars, header), 0o600);
    await writeFileAtomic(dropIn, renderSizingDropIn(limits, machine), 0o644);
    log.info(
      { envFile, dropIn, variables: Object.keys(vars).sort(), maxWorkers: vars.MAX_WORKERS, maxWorkersFrom, machine, limits },
      "wrote the worker environment and sizing",
    );
    return DONE;
  } catch (e) {
    const exitCode = e instanceof SizingOverrideError || e instanceof EnvFileError ? EXIT.CONFIG_ERROR : EXIT.CRASHED;
    log.error({ exitCode, envFile, dropIn, error: errorName(e) }, `kiln-worker env failed: ${describeError(e)}`);
    return exitCode;
  }
}
