import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export interface WorkerSecurityGroupArgs {
  vpcId: string;
  tags: Record<string, string>;
}

/**
 * Workers accept no connection at all (Session Manager needs none) and reach AWS APIs over HTTPS
 * only. DNS and the time service are link-local and not subject to security groups.
 */
export class WorkerSecurityGroup extends pulumi.ComponentResource {
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly vpcId: pulumi.Output<string>;

  constructor(name: string, args: WorkerSecurityGroupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:network:WorkerSecurityGroup", name, {}, opts);

    this.vpcId = pulumi.output(args.vpcId);

    this.securityGroup = new aws.ec2.SecurityGroup(
      name,
      {
        description: "kiln workers: no inbound, HTTPS out",
        vpcId: this.vpcId,
        ingress: [],
        egress: [
          { description: "AWS APIs over HTTPS", protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] },
        ],
        tags: args.tags,
      },
      { parent: this },
    );

    this.registerOutputs({ securityGroupId: this.securityGroup.id });
  }
}
