import * as fs from "node:fs";
import { ConfigError, KilnConfig, parseStackConfig } from "../infra/config";
import { readStackFile } from "../infra/stack-file";
import { findLocalFleet, localStateDir } from "../local/control-state";
import { ROOT } from "../local/plan";
import { FlagValues, str } from "./args";
import { AwsClients } from "./aws/clients";
import { AwsFleet } from "./aws/fleet";
import { NotFoundError, UsageError } from "./exit";
import type { OpsFleet } from "./fleet";
import { LocalOpsFleet } from "./local-fleet";

/** What every command is told: which stack, where, and how to answer. */
export interface Globals {
  stack: string;
  json: boolean;
  local: boolean;
  aws: boolean;
  region?: string;
  endpoint?: string;
  stackDir: string;
  /** Where running local fleets leave their records. */
  stateDir: string;
}

export function readGlobals(values: FlagValues, env: NodeJS.ProcessEnv): Globals {
  const stackDir = str(values, "stack-dir") ?? ROOT;
  const stack = str(values, "stack");
  if (!stack) {
    const known = fs.existsSync(stackDir)
      ? fs
          .readdirSync(stackDir)
          .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
          .filter(Boolean)
      : [];
    throw new UsageError(`--stack is required: which stack? (stacks here: ${known.join(", ") || "none"})`);
  }
  if (values.local && values.aws) throw new UsageError("--local and --aws: give one of them, not both");
  const profile = str(values, "profile");
  // The SDK's credential chain reads it; set before any client exists.
  if (profile) env.AWS_PROFILE = profile;
  return {
    stack,
    json: Boolean(values.json),
    local: Boolean(values.local),
    aws: Boolean(values.aws),
    region: str(values, "region"),
    endpoint: str(values, "endpoint-url"),
    stackDir,
    stateDir: localStateDir(ROOT, env),
  };
}

/** The stack's validated config; ConfigError (exit 78) for an invalid file, UsageError for a missing one. */
export function loadStack(g: Globals): KilnConfig {
  let raw;
  try {
    raw = readStackFile(g.stackDir, g.stack).raw;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new UsageError(`--stack ${g.stack}: ${(e as Error).message}`);
  }
  return parseStackConfig(g.stack, raw);
}

/**
 * The fleet the command works on: the running local fleet of the stack (asked for with --local,
 * or found running), else the deployed stack on AWS.
 */
export function openFleet(g: Globals, cfg: KilnConfig): OpsFleet {
  if (!g.aws) {
    const record = findLocalFleet(g.stateDir, g.stack);
    if (record) return new LocalOpsFleet(cfg, record);
    if (g.local) {
      throw new NotFoundError(
        `no local fleet of stack ${g.stack} is running (none recorded in ${g.stateDir}): start one with \`npm run local -- --stack ${g.stack} --keep-running\``,
      );
    }
  }
  return new AwsFleet(cfg, new AwsClients({ region: g.region ?? cfg.region, endpoint: g.endpoint }));
}
