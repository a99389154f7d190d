import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export interface WorkerLaunchTemplateArgs {
  amiId: string;
  instanceType: string;
  instanceProfileArn: pulumi.Input<string>;
  securityGroupId: pulumi.Input<string>;
  /** Cloud-config, plain text; encoded here. */
  userData: pulumi.Input<string>;
  /** The image's own root device (inspectWorkerImage): another name would add an empty volume. */
  rootDeviceName: string;
  rootVolumeSize: number;
  /** T instances' CPU credit mode; absent for other instance types, which have none. */
  cpuCredits?: "standard" | "unlimited";
  tags: Record<string, string>;
}

/**
 * How a worker instance is launched: the baked AMI, IMDSv2 only, an encrypted gp3 root, no key pair,
 * basic monitoring (nothing reads EC2's one-minute metrics; they would only cost), and an explicit
 * CPU credit mode (T3 defaults to unlimited, which bills a CPU-bound backlog for surplus credits).
 */
export class WorkerLaunchTemplate extends pulumi.ComponentResource {
  readonly launchTemplate: aws.ec2.LaunchTemplate;

  constructor(name: string, args: WorkerLaunchTemplateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:compute:WorkerLaunchTemplate", name, {}, opts);

    this.launchTemplate = new aws.ec2.LaunchTemplate(
      name,
      {
        imageId: args.amiId,
        instanceType: args.instanceType,
        iamInstanceProfile: { arn: args.instanceProfileArn },
        vpcSecurityGroupIds: [args.securityGroupId],
        metadataOptions: {
          httpEndpoint: "enabled",
          httpTokens: "required",
          // One hop: only processes on the instance itself reach the metadata service.
          httpPutResponseHopLimit: 1,
        },
        blockDeviceMappings: [
          {
            deviceName: args.rootDeviceName,
            ebs: { volumeType: "gp3", volumeSize: args.rootVolumeSize, encrypted: "true", deleteOnTermination: "true" },
          },
        ],
        monitoring: { enabled: false },
        creditSpecification: args.cpuCredits ? { cpuCredits: args.cpuCredits } : undefined,
        userData: pulumi.output(args.userData).apply((text) => Buffer.from(text, "utf8").toString("base64")),
        tagSpecifications: ["instance", "volume"].map((resourceType) => ({ resourceType, tags: args.tags })),
        tags: args.tags,
        updateDefaultVersion: true,
      },
      { parent: this },
    );

    this.registerOutputs({ launchTemplateId: this.launchTemplate.id, latestVersion: this.launchTemplate.latestVersion });
  }
}
