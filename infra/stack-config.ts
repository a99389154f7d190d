import * as pulumi from "@pulumi/pulumi";
import { ConfigError, KilnConfig, parseStackConfig } from "./config";

// The SDK's public Config API cannot tell whether a key was set with --secret; this can.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };

/** The stack config as the Pulumi program uses it: secrets only ever as secret Outputs. */
export type FleetConfig = Omit<KilnConfig, "secretEnv"> & { secretEnv: Record<string, pulumi.Output<string>> };

export function loadFleetConfig(): FleetConfig {
  const stack = pulumi.getStack();
  const values = pulumi.runtime.allConfig();
  const secretKeys = new Set(Object.keys(values).filter((k) => isConfigSecret(k)));
  const cfg = parseStackConfig(stack, { values, secretKeys });
  if (!cfg.amiId) {
    throw new ConfigError(stack, [
      `kiln:amiId is not set: bake the worker image first with \`npm run bake-ami -- --stack ${stack}\`, which records it here`,
    ]);
  }
  const secretEnv = Object.fromEntries(Object.entries(cfg.secretEnv).map(([k, v]) => [k, pulumi.secret(v)]));
  return { ...cfg, secretEnv };
}

/** Tags every taggable kiln resource carries: the stack, and the stack's own extra tags. */
export function fleetTags(cfg: Pick<KilnConfig, "stack" | "tags">): Record<string, string> {
  return { ...cfg.tags, "kiln:stack": cfg.stack, ManagedBy: "kiln" };
}
