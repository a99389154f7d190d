import type { KilnConfig } from "../infra/config";
import { workerVariables } from "../infra/worker-variables";

/** What a kiln:secretEnv variable holds during the bake's self-check: the real values stay in SSM. */
export const SECRET_PLACEHOLDER = "kiln-self-check-placeholder";

/** The variables that say what the worker runs: a change to any of them needs another self-check. */
export const WORKER_MODE_VARIABLES = ["WORKER_HANDLER", "WORKER_COMMAND", "WORKER_APP", "WORKER_APP_PATH", "WORKER_APP_HEALTH_PATH", "WORKER_APP_START_TIMEOUT"] as const;

/**
 * The environment an instance of this stack gives its worker (what kiln-worker env writes from SSM),
 * for the validate step's `kiln-worker run --self-check` on the builder: the stack's own handler,
 * command or app, its kiln:env, and its kiln:secretEnv names with placeholder values. Only what the
 * deploy creates is made up: the queue URL, the group and the log group.
 */
export function selfCheckEnvironment(cfg: KilnConfig): Record<string, string> {
  const vars = workerVariables(cfg, {
    queueUrl: `https://sqs.${cfg.region}.amazonaws.com/000000000000/kiln-self-check-${cfg.stack}`,
    groupName: `kiln-self-check-${cfg.stack}`,
    logGroupName: `/kiln/${cfg.stack}/worker`,
  });
  const env: Record<string, string> = { AWS_REGION: cfg.region };
  for (const [name, value] of Object.entries(vars)) env[name] = String(value);
  for (const name of Object.keys(cfg.secretEnv ?? {})) env[name] = SECRET_PLACEHOLDER;
  return env;
}

/** "WORKER_APP=/opt/app/venv/bin/python3 app.py": the one line that says what the self-check checks. */
export function describeWorkerMode(env: Record<string, string>): string {
  const set = WORKER_MODE_VARIABLES.filter((v) => env[v]);
  return set.length ? set.map((v) => `${v}=${env[v]}`).join(" ") : "no WORKER_HANDLER, WORKER_COMMAND or WORKER_APP";
}
