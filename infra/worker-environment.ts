import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

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

// Pure, without Pulumi's runtime: the bake and the local fleet compute the same variables.
export { workerVariables } from "./worker-variables";
