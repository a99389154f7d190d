import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ConfigError, KilnConfig, parseStackConfig } from "./config";
import { NetworkSurvey, surveyNetwork } from "./network-survey";
import { parseStackFileText, stackFilePath } from "./stack-file";
import { inspectWorkerImage, WorkerImage } from "./worker-image";

// The SDK's public Config API cannot tell whether a key was set with --secret; this can.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };

/** The stack config as the Pulumi program uses it: secrets only ever as secret Outputs. */
export type FleetConfig = Omit<KilnConfig, "secretEnv"> & { secretEnv: Record<string, pulumi.Output<string>> };

/** The config, and what the account says about it: the subnets' network and the baked image. */
export interface Deployment {
  cfg: FleetConfig;
  network: NetworkSurvey;
  image: WorkerImage;
}

/**
 * Which values inside maps the stack file holds as `secure:`. The CLI marks a whole map secret when
 * one value in it is, so only the file can tell a plaintext value beside a secret one.
 */
function secretLeavesOf(stack: string): ReadonlyMap<string, boolean> | undefined {
  let file: string;
  try {
    file = stackFilePath(process.cwd(), stack);
  } catch {
    return undefined;
  }
  // Absent when the stack's config lives elsewhere (a Pulumi ESC environment): then whole keys decide.
  if (!fs.existsSync(file)) return undefined;
  return parseStackFileText(fs.readFileSync(file, "utf8"), file, stack).secretLeaves;
}

/**
 * Reads and checks everything before the program declares a resource: the stack config, then (once
 * it is valid) the subnets and the image in the account, with the same credentials and profile as
 * the AWS provider. Any problem stops the deploy with all of them listed, and Pulumi prints the
 * list without a stack trace.
 */
export async function loadDeployment(ec2 = defaultEc2Client()): Promise<Deployment> {
  const stack = pulumi.getStack();
  try {
    const values = pulumi.runtime.allConfig();
    const secretKeys = new Set(Object.keys(values).filter((k) => isConfigSecret(k)));
    const cfg = parseStackConfig(stack, { values, secretKeys, secretLeaves: secretLeavesOf(stack) });
    if (!cfg.amiId) {
      throw new ConfigError(stack, [
        `kiln:amiId is not set: bake the worker image first with \`npm run bake-ami -- --stack ${stack}\`, which records it here`,
      ]);
    }
    const [net, img] = await Promise.all([
      surveyNetwork(ec2, cfg.subnetIds, { stack, region: cfg.region, vpcEndpoints: cfg.vpcEndpoints }),
      inspectWorkerImage(ec2, cfg.amiId, { stack, region: cfg.region, rootVolumeSize: cfg.rootVolumeSize }),
    ]).catch((e: Error & { $metadata?: unknown }) => {
      // An AWS answer (no permission, throttled, no credentials): one line that says which check and why.
      throw new pulumi.RunError(
        `kiln could not check the stack's subnets and image in ${cfg.region} before deploying: ${e.name}: ${e.message}` +
          (e.name === "UnauthorizedOperation" || e.name === "AccessDenied" || e.name === "AccessDeniedException"
            ? " (the deploying identity needs ec2:DescribeSubnets, DescribeRouteTables, DescribeVpcEndpoints, DescribeVpcAttribute and DescribeImages)"
            : ""),
      );
    });
    const problems = [...net.problems, ...img.problems];
    if (problems.length > 0) throw new ConfigError(stack, problems);
    const secretEnv = Object.fromEntries(Object.entries(cfg.secretEnv).map(([k, v]) => [k, pulumi.secret(v)]));
    return { cfg: { ...cfg, secretEnv }, network: net.survey!, image: img.image! };
  } catch (e) {
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
  } finally {
    ec2.destroy();
  }
}

function defaultEc2Client(): EC2Client {
  const aws = new pulumi.Config("aws");
  return new EC2Client({ region: aws.get("region"), profile: aws.get("profile") });
}

/** Tags every taggable kiln resource carries: the stack, and the stack's own extra tags. */
export function fleetTags(cfg: Pick<KilnConfig, "stack" | "tags">): Record<string, string> {
  return { ...cfg.tags, "kiln:stack": cfg.stack, ManagedBy: "kiln" };
}
