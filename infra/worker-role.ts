import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { PolicyDocument } from "./worker-policy";

export interface WorkerRoleArgs {
  /** The worker's own permissions (see workerPolicyDocument). */
  policy: pulumi.Input<PolicyDocument>;
  partition: pulumi.Input<string>;
  tags: Record<string, string>;
}

/**
 * The instance role and profile of the workers. Session Manager replaces SSH: no key pair, no
 * inbound port, every session logged by AWS.
 */
export class WorkerRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly instanceProfile: aws.iam.InstanceProfile;

  constructor(name: string, args: WorkerRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:iam:WorkerRole", name, {}, opts);

    this.role = new aws.iam.Role(
      name,
      {
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        tags: args.tags,
      },
      { parent: this },
    );

    new aws.iam.RolePolicy(
      `${name}-worker`,
      { role: this.role.name, policy: pulumi.output(args.policy).apply((p) => JSON.stringify(p)) },
      { parent: this },
    );

    this.instanceProfile = new aws.iam.InstanceProfile(name, { role: this.role.name, tags: args.tags }, { parent: this });

    this.registerOutputs({ roleArn: this.role.arn, instanceProfileArn: this.instanceProfile.arn });
  }
}
