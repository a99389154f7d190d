import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { endpointServiceName, WorkerService } from "./network-survey";

export interface WorkerVpcEndpointsArgs {
  region: string;
  vpcId: string;
  /** Interface endpoints to create: those no other endpoint in the VPC serves. */
  interfaceServices: WorkerService[];
  /** At most one subnet per availability zone (an interface endpoint's rule). */
  subnetIds: string[];
  /** Route tables that get the S3 gateway endpoint's route; none, no gateway endpoint. */
  s3RouteTableIds: string[];
  /** Only the workers may reach the endpoints. */
  workerSecurityGroupId: pulumi.Input<string>;
  tags: Record<string, string>;
}

/**
 * `kiln:vpcEndpoints`: what a subnet without a NAT gateway needs for the workers to reach AWS.
 * Interface endpoints with private DNS, so the SDK's usual host names resolve to them, behind a
 * security group that admits HTTPS from the workers only; and an S3 gateway endpoint on the subnets'
 * route tables. Tagged with the stack, so the next survey knows them as this stack's own.
 */
export class WorkerVpcEndpoints extends pulumi.ComponentResource {
  readonly securityGroup?: aws.ec2.SecurityGroup;
  readonly endpoints: aws.ec2.VpcEndpoint[] = [];

  constructor(name: string, args: WorkerVpcEndpointsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:network:WorkerVpcEndpoints", name, {}, opts);

    if (args.interfaceServices.length > 0) {
      this.securityGroup = new aws.ec2.SecurityGroup(
        name,
        {
          description: "kiln VPC endpoints: HTTPS from the workers",
          vpcId: args.vpcId,
          ingress: [{ description: "HTTPS from the workers", protocol: "tcp", fromPort: 443, toPort: 443, securityGroups: [args.workerSecurityGroupId] }],
          egress: [],
          tags: args.tags,
        },
        { parent: this },
      );
      for (const service of args.interfaceServices) {
        this.endpoints.push(
          new aws.ec2.VpcEndpoint(
            `${name}-${service}`,
            {
              vpcId: args.vpcId,
              serviceName: endpointServiceName(args.region, service),
              vpcEndpointType: "Interface",
              privateDnsEnabled: true,
              subnetIds: args.subnetIds,
              securityGroupIds: [this.securityGroup.id],
              tags: args.tags,
            },
            { parent: this },
          ),
        );
      }
    }
    if (args.s3RouteTableIds.length > 0) {
      this.endpoints.push(
        new aws.ec2.VpcEndpoint(
          `${name}-s3`,
          {
            vpcId: args.vpcId,
            serviceName: endpointServiceName(args.region, "s3"),
            vpcEndpointType: "Gateway",
            routeTableIds: args.s3RouteTableIds,
            tags: args.tags,
          },
          { parent: this },
        ),
      );
    }

    this.registerOutputs({ endpointIds: this.endpoints.map((e) => e.id) });
  }
}
