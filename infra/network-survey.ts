import {
  DescribeSubnetsCommand,
  DescribeVpcAttributeCommand,
  EC2Client,
  paginateDescribeRouteTables,
  paginateDescribeVpcEndpoints,
  RouteTable,
  Subnet,
  VpcEndpoint,
} from "@aws-sdk/client-ec2";

/**
 * What the workers call over HTTPS besides the application's own services: SQS, their environment
 * in SSM (decrypted by KMS), Session Manager's channels, CloudWatch Logs and metrics, and Auto
 * Scaling for the lifecycle hook and health. Interface endpoints for these, and S3 as a gateway,
 * are what a subnet without a NAT gateway needs.
 */
export const WORKER_INTERFACE_SERVICES = ["sqs", "ssm", "ssmmessages", "ec2messages", "logs", "monitoring", "autoscaling", "kms"] as const;
export type WorkerService = (typeof WORKER_INTERFACE_SERVICES)[number] | "s3";

/** Endpoint states in which it serves nothing. */
const GONE = ["deleted", "deleting", "failed", "rejected", "expired"];

export const endpointServiceName = (region: string, service: WorkerService) => `com.amazonaws.${region}.${service}`;

export interface SurveyedSubnet {
  subnetId: string;
  availabilityZone: string;
  routeTableId: string;
  /** How instances in it reach the internet ("NAT gateway nat-..."), if they do. */
  internet?: string;
}

export interface NetworkSurvey {
  vpcId: string;
  subnets: SurveyedSubnet[];
  /** Services none of the VPC's other endpoints serve: what `kiln:vpcEndpoints` creates. */
  missingInterfaceServices: WorkerService[];
  /** The subnets' route tables not yet served by an S3 gateway endpoint of someone else's. */
  routeTablesWithoutS3: string[];
  /** One configured subnet per availability zone: an interface endpoint takes at most one per zone. */
  endpointSubnetIds: string[];
}

export interface SurveyOptions {
  stack: string;
  region: string;
  vpcEndpoints: boolean;
}

/**
 * Surveys the configured subnets before anything is declared: that they exist and share one VPC,
 * and that each can reach AWS, through the internet or through VPC endpoints. A worker without that
 * path retries, exits and stays InService doing nothing, and its failure report cannot reach AWS
 * either: caught here, the deploy stops with the fix instead. Returns problems rather than throwing
 * so they join the rest of the config's.
 */
export async function surveyNetwork(
  ec2: EC2Client,
  subnetIds: string[],
  opts: SurveyOptions,
): Promise<{ survey?: NetworkSurvey; problems: string[] }> {
  let subnets: Subnet[];
  try {
    subnets = (await ec2.send(new DescribeSubnetsCommand({ SubnetIds: subnetIds }))).Subnets ?? [];
  } catch (e) {
    if ((e as Error).name !== "InvalidSubnetID.NotFound") throw e;
    return { problems: [`kiln:subnetIds: ${(e as Error).message} in ${opts.region}: check the ids and aws:region`] };
  }
  const byId = new Map(subnets.map((s) => [s.SubnetId!, s]));
  const vpcs = [...new Set(subnetIds.map((id) => byId.get(id)!.VpcId!))];
  if (vpcs.length > 1) {
    const where = subnetIds.map((id) => `${id} in ${byId.get(id)!.VpcId}`).join(", ");
    return { problems: [`kiln:subnetIds must all be in one VPC, but ${where}`] };
  }
  const vpcId = vpcs[0];

  const tables = await routeTables(ec2, vpcId, subnetIds);
  const endpoints: VpcEndpoint[] = [];
  for await (const page of paginateDescribeVpcEndpoints({ client: ec2 }, { Filters: [{ Name: "vpc-id", Values: [vpcId] }] })) {
    endpoints.push(...(page.VpcEndpoints ?? []).filter((e) => !GONE.includes(String(e.State).toLowerCase())));
  }
  // Endpoints this stack made earlier are the ones it would make again, not someone else's.
  const others = endpoints.filter((e) => !e.Tags?.some((t) => t.Key === "kiln:stack" && t.Value === opts.stack));

  const problems: string[] = [];
  const notes = new Map<string, string>();
  const surveyed: SurveyedSubnet[] = subnetIds.map((id) => {
    const subnet = byId.get(id)!;
    const table = tables.get(id)!;
    const route = internetRoute(table, subnet);
    if (route.note) notes.set(id, route.note);
    return { subnetId: id, availabilityZone: subnet.AvailabilityZone!, routeTableId: table.RouteTableId!, internet: route.via };
  });

  const missingInterfaceServices = WORKER_INTERFACE_SERVICES.filter((svc) => !servedBy(others, opts.region, svc));
  const s3Gateways = others.filter((e) => e.VpcEndpointType === "Gateway" && e.ServiceName === endpointServiceName(opts.region, "s3"));
  const routeTablesWithoutS3 = [...new Set(surveyed.map((s) => s.routeTableId))].filter(
    (rt) => !s3Gateways.some((e) => e.RouteTableIds?.includes(rt)),
  );

  if (opts.vpcEndpoints) {
    // Private DNS, which lets the SDK's usual host names reach an interface endpoint, needs both.
    for (const attribute of ["enableDnsSupport", "enableDnsHostnames"] as const) {
      const answer = await ec2.send(new DescribeVpcAttributeCommand({ VpcId: vpcId, Attribute: attribute }));
      const on = attribute === "enableDnsSupport" ? answer.EnableDnsSupport?.Value : answer.EnableDnsHostnames?.Value;
      if (!on) {
        problems.push(
          `kiln:vpcEndpoints needs ${attribute} on ${vpcId} (interface endpoints answer under the services' usual names only then): ` +
            `aws ec2 modify-vpc-attribute --vpc-id ${vpcId} --${attribute.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
        );
      }
    }
  } else {
    const missing = [
      ...missingInterfaceServices,
      ...(surveyed.some((s) => !s.internet && routeTablesWithoutS3.includes(s.routeTableId)) ? ["s3"] : []),
    ];
    for (const s of surveyed) {
      if (s.internet || missing.length === 0) continue;
      problems.push(
        `kiln:subnetIds: ${s.subnetId} (route table ${s.routeTableId}) ${notes.get(s.subnetId) ?? "has no route to the internet"} ` +
          `and ${vpcId} has no endpoint for ` +
          `${missing.join(", ")}: its workers could not reach AWS. Route 0.0.0.0/0 through a NAT gateway, or set ` +
          `\`pulumi config set kiln:vpcEndpoints true --stack ${opts.stack}\` (docs/deploy.md)`,
      );
    }
  }

  const firstPerZone = new Map<string, string>();
  for (const s of surveyed) if (!firstPerZone.has(s.availabilityZone)) firstPerZone.set(s.availabilityZone, s.subnetId);
  const endpointSubnetIds = [...firstPerZone.values()];
  return { survey: { vpcId, subnets: surveyed, missingInterfaceServices, routeTablesWithoutS3, endpointSubnetIds }, problems };
}

/** Each subnet's route table: its own association, or else the VPC's main table. */
async function routeTables(ec2: EC2Client, vpcId: string, subnetIds: string[]): Promise<Map<string, RouteTable>> {
  const tables: RouteTable[] = [];
  for await (const page of paginateDescribeRouteTables({ client: ec2 }, { Filters: [{ Name: "vpc-id", Values: [vpcId] }] })) {
    tables.push(...(page.RouteTables ?? []));
  }
  const main = tables.find((t) => t.Associations?.some((a) => a.Main));
  const out = new Map<string, RouteTable>();
  for (const id of subnetIds) {
    const table = tables.find((t) => t.Associations?.some((a) => a.SubnetId === id)) ?? main;
    if (!table) throw new Error(`${vpcId} has no main route table and ${id} no route table of its own`);
    out.set(id, table);
  }
  return out;
}

/**
 * How a subnet's instances reach the internet. An internet gateway serves only instances with a
 * public address, which kiln's launch template does not ask for: the subnet must hand them out.
 * Peering is not transitive, so a default route to a peer reaches no further than the peer.
 */
function internetRoute(table: RouteTable, subnet: Subnet): { via?: string; note?: string } {
  const defaults = (table.Routes ?? []).filter((r) => r.DestinationCidrBlock === "0.0.0.0/0");
  for (const r of defaults) {
    if (r.State === "blackhole") {
      const target = r.NatGatewayId ?? r.GatewayId ?? r.NetworkInterfaceId ?? r.TransitGatewayId;
      return { note: `routes 0.0.0.0/0 to ${target}, which no longer exists (a blackhole route),` };
    }
    if (r.NatGatewayId) return { via: `NAT gateway ${r.NatGatewayId}` };
    if (r.TransitGatewayId) return { via: `transit gateway ${r.TransitGatewayId}` };
    if (r.NetworkInterfaceId || r.InstanceId) return { via: `network appliance ${r.NetworkInterfaceId ?? r.InstanceId}` };
    if (r.GatewayId?.startsWith("vgw-")) return { via: `virtual private gateway ${r.GatewayId}` };
    if (r.GatewayId?.startsWith("igw-")) {
      if (subnet.MapPublicIpOnLaunch) return { via: `internet gateway ${r.GatewayId}` };
      return {
        note:
          `routes 0.0.0.0/0 to internet gateway ${r.GatewayId} but gives instances no public address ` +
          `(auto-assign public IPv4 is off, and kiln asks for none),`,
      };
    }
  }
  return {};
}

/** Whether another endpoint in the VPC already answers for a service under its usual name. */
function servedBy(endpoints: VpcEndpoint[], region: string, service: WorkerService): boolean {
  return endpoints.some(
    (e) => e.VpcEndpointType === "Interface" && e.ServiceName === endpointServiceName(region, service) && e.PrivateDnsEnabled,
  );
}
