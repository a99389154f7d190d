import * as ec2 from "@aws-sdk/client-ec2";
import { Moto, MOTO_REGION, startMoto } from "./moto";
import { FakeAws, stackConfig } from "./pulumi-harness";

/** How a test network's subnets reach the internet, as the subnet route check sees it. */
export type Egress = "nat" | "public-igw" | "private-igw" | "blackhole" | "none";

export interface NetworkLayout {
  /** One subnet per entry, in that availability zone. */
  zones?: string[];
  egress?: Egress;
  /** Off, interface endpoints with private DNS cannot be used. */
  dnsHostnames?: boolean;
  /** Interface endpoints that already exist in the VPC, with the tags they carry. */
  endpoints?: { services: string[]; tags?: Record<string, string> };
  /** An S3 gateway endpoint already on the subnets' route table. */
  s3Gateway?: boolean;
}

export interface TestNetwork {
  vpcId: string;
  subnetIds: string[];
  routeTableId: string;
  mainRouteTableId: string;
}

/**
 * A VPC in moto laid out as a test needs: subnets (one per zone) on their own route table, whose
 * default route leads where `egress` says. moto checks ids and associations as EC2 does.
 */
export async function buildNetwork(client: ec2.EC2Client, layout: NetworkLayout = {}): Promise<TestNetwork> {
  const zones = layout.zones ?? [`${MOTO_REGION}a`, `${MOTO_REGION}c`];
  const egress = layout.egress ?? "nat";
  const vpc = (await client.send(new ec2.CreateVpcCommand({ CidrBlock: "10.0.0.0/16" }))).Vpc!;
  const vpcId = vpc.VpcId!;
  await client.send(new ec2.ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsHostnames: { Value: layout.dnsHostnames ?? true } }));
  const subnetIds: string[] = [];
  for (const [i, zone] of zones.entries()) {
    const subnet = (await client.send(new ec2.CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.0.${i + 1}.0/24`, AvailabilityZone: zone }))).Subnet!;
    subnetIds.push(subnet.SubnetId!);
    if (egress === "public-igw") {
      await client.send(new ec2.ModifySubnetAttributeCommand({ SubnetId: subnet.SubnetId, MapPublicIpOnLaunch: { Value: true } }));
    }
  }
  const table = (await client.send(new ec2.CreateRouteTableCommand({ VpcId: vpcId }))).RouteTable!;
  for (const id of subnetIds) await client.send(new ec2.AssociateRouteTableCommand({ RouteTableId: table.RouteTableId, SubnetId: id }));

  if (egress !== "none") {
    // The NAT gateway itself sits in a public subnet of its own.
    const igw = (await client.send(new ec2.CreateInternetGatewayCommand({}))).InternetGateway!;
    await client.send(new ec2.AttachInternetGatewayCommand({ InternetGatewayId: igw.InternetGatewayId, VpcId: vpcId }));
    if (egress === "public-igw" || egress === "private-igw") {
      await client.send(new ec2.CreateRouteCommand({ RouteTableId: table.RouteTableId, DestinationCidrBlock: "0.0.0.0/0", GatewayId: igw.InternetGatewayId }));
    } else {
      const publicSubnet = (await client.send(new ec2.CreateSubnetCommand({ VpcId: vpcId, CidrBlock: "10.0.200.0/24", AvailabilityZone: zones[0] }))).Subnet!;
      const nat = (await client.send(new ec2.CreateNatGatewayCommand({ SubnetId: publicSubnet.SubnetId }))).NatGateway!;
      await client.send(new ec2.CreateRouteCommand({ RouteTableId: table.RouteTableId, DestinationCidrBlock: "0.0.0.0/0", NatGatewayId: nat.NatGatewayId }));
      if (egress === "blackhole") await client.send(new ec2.DeleteNatGatewayCommand({ NatGatewayId: nat.NatGatewayId }));
    }
  }

  for (const service of layout.endpoints?.services ?? []) {
    await client.send(
      new ec2.CreateVpcEndpointCommand({
        VpcId: vpcId,
        ServiceName: `com.amazonaws.${MOTO_REGION}.${service}`,
        VpcEndpointType: "Interface",
        SubnetIds: [subnetIds[0]],
        PrivateDnsEnabled: true,
        TagSpecifications: layout.endpoints?.tags
          ? [{ ResourceType: "vpc-endpoint", Tags: Object.entries(layout.endpoints.tags).map(([Key, Value]) => ({ Key, Value })) }]
          : undefined,
      }),
    );
  }
  if (layout.s3Gateway) {
    await client.send(
      new ec2.CreateVpcEndpointCommand({
        VpcId: vpcId,
        ServiceName: `com.amazonaws.${MOTO_REGION}.s3`,
        VpcEndpointType: "Gateway",
        RouteTableIds: [table.RouteTableId!],
      }),
    );
  }
  const main = (
    await client.send(new ec2.DescribeRouteTablesCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }, { Name: "association.main", Values: ["true"] }] }))
  ).RouteTables![0];
  return { vpcId, subnetIds, routeTableId: table.RouteTableId!, mainRouteTableId: main.RouteTableId! };
}

/**
 * A baked image as bake-ami leaves it. moto gives every image the root device /dev/sda1 (Ubuntu's,
 * not Amazon Linux's /dev/xvda) and a 15 GiB root snapshot, whatever it is asked for.
 */
export async function registerImage(client: ec2.EC2Client): Promise<string> {
  const image = await client.send(new ec2.RegisterImageCommand({ Name: `kiln-test-${Date.now()}-${Math.random()}`, Architecture: "x86_64" }));
  return image.ImageId!;
}

/** What moto reports for every image. */
export const MOTO_IMAGE = { rootDeviceName: "/dev/sda1", rootSnapshotGiB: 15 } as const;

/** The stack file's config moved onto a moto network and image, everything else as committed. */
export function onNetwork(
  config: { values: Record<string, string>; secretKeys: string[] },
  network: TestNetwork,
  amiId: string,
): { values: Record<string, string>; secretKeys: string[] } {
  const values = { ...config.values, "kiln:subnetIds": JSON.stringify(network.subnetIds), "kiln:amiId": amiId };
  return { values, secretKeys: [...config.secretKeys] };
}

export function ec2Client(moto: Moto): ec2.EC2Client {
  return new ec2.EC2Client(moto.client());
}

/**
 * An AWS account for the Pulumi program's own calls: moto with a network and a baked image, and the
 * committed stack files moved onto them. Pulumi's mocks stand for the resources the program declares;
 * this stands for what already exists in the account before `pulumi up`.
 */
export class TestAccount {
  private constructor(
    readonly moto: Moto,
    readonly ec2: ec2.EC2Client,
    readonly network: TestNetwork,
    readonly amiId: string,
  ) {}

  static async start(layout: NetworkLayout = {}): Promise<TestAccount> {
    const moto = await startMoto();
    try {
      const client = ec2Client(moto);
      const network = await buildNetwork(client, layout);
      return new TestAccount(moto, client, network, await registerImage(client));
    } catch (e) {
      await moto.stop();
      throw e;
    }
  }

  /** The harness's view of AWS, with the program's own calls sent here. */
  fakeAws(): FakeAws {
    const aws = new FakeAws(MOTO_REGION);
    aws.ec2Endpoint = this.moto.endpoint;
    return aws;
  }

  /** Pulumi.<stack>.yaml as the CLI would pass it, on this account's subnets and image. */
  stackConfig(stack: string): ReturnType<typeof stackConfig> {
    return onNetwork(stackConfig(stack), this.network, this.amiId);
  }

  async stop(): Promise<void> {
    this.ec2.destroy();
    await this.moto.stop();
  }
}
