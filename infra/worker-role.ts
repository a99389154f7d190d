import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { PolicyDocument } from "./worker-policy";

export interface WorkerRoleArgs {
  tags: Record<string, string>;
}

/**
 * The instance role and profile of the workers. Session Manager replaces SSH: no key pair, no
 * inbound port, and every StartSession call in CloudTrail. What is typed in a session is recorded
 * only if the account's Session Manager preferences send it to S3 or CloudWatch Logs; kiln leaves
 * those account-wide settings alone.
 */
export class WorkerRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly instanceProfile: aws.iam.InstanceProfile;
  private permissions?: aws.iam.RolePolicy;

  constructor(
    private readonly name: string,
    args: WorkerRoleArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
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

    this.instanceProfile = new aws.iam.InstanceProfile(name, { role: this.role.name, tags: args.tags }, { parent: this });

    this.registerOutputs({ roleArn: this.role.arn, instanceProfileArn: this.instanceProfile.arn });
  }

  /**
   * The worker's own permissions (see workerPolicyDocument), given once what they name exists: the
   * stack key's policy must name the role before the role's policy can name the key.
   */
  grant(policy: pulumi.Input<PolicyDocument>): aws.iam.RolePolicy {
    this.permissions = new aws.iam.RolePolicy(
      `${this.name}-worker`,
      { role: this.role.name, policy: pulumi.output(policy).apply((p) => JSON.stringify(p)) },
      { parent: this },
    );
    return this.permissions;
  }

  /** The instance profile's ARN, known only once the role has its permissions: no instance boots without them. */
  get grantedInstanceProfileArn(): pulumi.Output<string> {
    if (!this.permissions) throw new Error("WorkerRole.grant() must come before the instance profile is used");
    return pulumi.all([this.instanceProfile.arn, this.permissions.id]).apply(([arn]) => arn);
  }
}
