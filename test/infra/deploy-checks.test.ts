import { strict as assert } from "node:assert";
import * as ec2 from "@aws-sdk/client-ec2";
import * as pulumi from "@pulumi/pulumi";
import { surveyNetwork, WORKER_INTERFACE_SERVICES } from "../../infra/network-survey";
import { inspectWorkerImage } from "../../infra/worker-image";
import { Moto, MOTO_REGION, startMoto } from "../support/moto";
import { buildNetwork, ec2Client, MOTO_IMAGE, NetworkLayout, onNetwork, registerImage, TestAccount } from "../support/moto-network";
import { startFaultProxy } from "../support/fault-proxy";
import { FakeAws, runStack, stackConfig } from "../support/pulumi-harness";

const OPTS = { stack: "prod", region: MOTO_REGION, vpcEndpoints: false };
const ALL_SERVICES = [...WORKER_INTERFACE_SERVICES];

describe("what the program checks in the account before declaring anything (moto)", function () {
  let moto: Moto;
  let client: ec2.EC2Client;

  before(async () => {
    moto = await startMoto();
    client = ec2Client(moto);
  });
  after(async () => {
    client?.destroy();
    await moto?.stop();
  });

  const survey = async (layout: NetworkLayout, opts: Partial<typeof OPTS> = {}) => {
    const network = await buildNetwork(client, layout);
    return { network, ...(await surveyNetwork(client, network.subnetIds, { ...OPTS, ...opts })) };
  };

  describe("each subnet's path to AWS", () => {
    it("accepts private subnets routed through a NAT gateway, and picks one subnet per zone for endpoints", async () => {
      const { network, survey: s, problems } = await survey({ egress: "nat", zones: [`${MOTO_REGION}a`, `${MOTO_REGION}a`, `${MOTO_REGION}c`] });
      assert.deepEqual(problems, []);
      assert.equal(s!.vpcId, network.vpcId);
      assert.match(s!.subnets[0].internet!, /^NAT gateway nat-/);
      assert.deepEqual(s!.endpointSubnetIds, [network.subnetIds[0], network.subnetIds[2]], "the first subnet of each zone");
    });

    it("refuses subnets with no route out and no endpoints, naming each, what is missing and both fixes", async () => {
      const { network, problems } = await survey({ egress: "none" });
      assert.equal(problems.length, 2, problems.join("\n"));
      for (const [i, p] of problems.entries()) {
        assert.ok(p.startsWith(`kiln:subnetIds: ${network.subnetIds[i]} (route table ${network.routeTableId}) has no route to the internet`), p);
        assert.match(p, new RegExp(`${network.vpcId} has no endpoint for ${ALL_SERVICES.join(", ")}, s3: its workers could not reach AWS`));
        assert.match(p, /Route 0\.0\.0\.0\/0 through a NAT gateway, or set `pulumi config set kiln:vpcEndpoints true --stack prod`/);
      }
    });

    it("refuses a route to an internet gateway from a subnet that gives no public address", async () => {
      const { problems } = await survey({ egress: "private-igw" });
      assert.equal(problems.length, 2);
      assert.match(problems[0], /routes 0\.0\.0\.0\/0 to internet gateway igw-[0-9a-f]+ but gives instances no public address \(auto-assign public IPv4 is off, and kiln asks for none\), and vpc-/);
    });

    it("accepts a public subnet that gives every instance an address", async () => {
      const { survey: s, problems } = await survey({ egress: "public-igw" });
      assert.deepEqual(problems, []);
      assert.match(s!.subnets[0].internet!, /^internet gateway igw-/);
    });

    it("falls back to the VPC's main route table for a subnet with none of its own", async () => {
      const network = await buildNetwork(client, { egress: "nat" });
      // Another subnet in the same VPC, associated with nothing: the main table (local route only) applies.
      const bare = (await client.send(new ec2.CreateSubnetCommand({ VpcId: network.vpcId, CidrBlock: "10.0.50.0/24", AvailabilityZone: `${MOTO_REGION}a` }))).Subnet!;
      const { problems } = await surveyNetwork(client, [network.subnetIds[0], bare.SubnetId!], OPTS);
      assert.equal(problems.length, 1);
      assert.ok(problems[0].startsWith(`kiln:subnetIds: ${bare.SubnetId} (route table ${network.mainRouteTableId}) has no route to the internet`), problems[0]);
    });

    it("accepts isolated subnets when other endpoints in the VPC already serve every service", async () => {
      const { survey: s, problems } = await survey({ egress: "none", endpoints: { services: ALL_SERVICES }, s3Gateway: true });
      assert.deepEqual(problems, []);
      assert.deepEqual(s!.missingInterfaceServices, []);
      assert.deepEqual(s!.routeTablesWithoutS3, []);
    });

    it("does not count this stack's own endpoints as a path: turning kiln:vpcEndpoints off would delete them", async () => {
      const { problems } = await survey({ egress: "none", endpoints: { services: ALL_SERVICES, tags: { "kiln:stack": "prod" } } });
      assert.equal(problems.length, 2);
      assert.match(problems[0], new RegExp(`no endpoint for ${ALL_SERVICES.join(", ")}, s3`));
    });

    it("with kiln:vpcEndpoints, plans only the endpoints the VPC lacks, and needs DNS hostnames for private DNS", async () => {
      const { network, survey: s, problems } = await survey(
        { egress: "none", endpoints: { services: ["sqs", "ssm"] } },
        { vpcEndpoints: true },
      );
      assert.deepEqual(problems, []);
      assert.deepEqual(s!.missingInterfaceServices, ALL_SERVICES.filter((x) => x !== "sqs" && x !== "ssm"));
      assert.deepEqual(s!.routeTablesWithoutS3, [network.routeTableId]);

      const off = await survey({ egress: "none", dnsHostnames: false }, { vpcEndpoints: true });
      assert.equal(off.problems.length, 1);
      assert.equal(
        off.problems[0],
        `kiln:vpcEndpoints needs enableDnsHostnames on ${off.network.vpcId} (interface endpoints answer under the services' usual names only then): ` +
          `aws ec2 modify-vpc-attribute --vpc-id ${off.network.vpcId} --enable-dns-hostnames`,
      );
    });

    it("refuses subnets in different VPCs, and subnets that do not exist", async () => {
      const a = await buildNetwork(client, { zones: [`${MOTO_REGION}a`] });
      const b = await buildNetwork(client, { zones: [`${MOTO_REGION}c`] });
      const split = await surveyNetwork(client, [a.subnetIds[0], b.subnetIds[0]], OPTS);
      assert.deepEqual(split.problems, [`kiln:subnetIds must all be in one VPC, but ${a.subnetIds[0]} in ${a.vpcId}, ${b.subnetIds[0]} in ${b.vpcId}`]);
      const missing = await surveyNetwork(client, ["subnet-0123456789abcdef0"], OPTS);
      assert.equal(missing.problems.length, 1);
      assert.match(missing.problems[0], /^kiln:subnetIds: .*subnet-0123456789abcdef0.* in ap-northeast-1: check the ids and aws:region$/);
    });
  });

  describe("the baked image", () => {
    it("gives the launch template its root device, and refuses a root volume smaller than its snapshot", async () => {
      const amiId = await registerImage(client);
      const fits = await inspectWorkerImage(client, amiId, { stack: "prod", region: MOTO_REGION, rootVolumeSize: 30 });
      assert.deepEqual(fits, { image: { rootDeviceName: MOTO_IMAGE.rootDeviceName, rootSnapshotSize: MOTO_IMAGE.rootSnapshotGiB }, problems: [] });
      const small = await inspectWorkerImage(client, amiId, { stack: "prod", region: MOTO_REGION, rootVolumeSize: 10 });
      assert.deepEqual(small.problems, [
        `kiln:rootVolumeSize (10 GiB) is smaller than the root snapshot of ${amiId} (15 GiB): EC2 would refuse every launch; set kiln:rootVolumeSize to 15 or more`,
      ]);
    });

    it("refuses an image the account cannot see, with the command that bakes one", async () => {
      const { problems } = await inspectWorkerImage(client, "ami-0123456789abcdef0", { stack: "prod", region: MOTO_REGION, rootVolumeSize: 30 });
      assert.deepEqual(problems, [
        "kiln:amiId ami-0123456789abcdef0 does not exist in ap-northeast-1, or this account may not use it: bake one with `npm run bake-ami -- --stack prod`",
      ]);
    });
  });

  describe("in the Pulumi program", () => {
    it("lists the network's and the image's problems together, and declares nothing", async () => {
      const network = await buildNetwork(client, { egress: "none" });
      const cfg = onNetwork(stackConfig("prod"), network, await registerImage(client));
      cfg.values["kiln:rootVolumeSize"] = "10";
      const aws = awsOn(moto.endpoint);
      await assert.rejects(runStack("prod", cfg, aws), (e: Error) => {
        assert.ok(pulumi.RunError.isInstance(e));
        const lines = e.message.split("\n").filter((l) => l.startsWith("  - "));
        assert.equal(lines.length, 3, e.message);
        assert.match(e.message, /has no route to the internet/);
        assert.match(e.message, /kiln:rootVolumeSize \(10 GiB\) is smaller than the root snapshot/);
        return true;
      });
      assert.deepEqual(aws.created.filter((r) => r.type.startsWith("aws:")), []);
    });

    it("says in one line which check an AWS error stopped, and declares nothing", async () => {
      const proxy = await startFaultProxy(moto.endpoint);
      try {
        proxy.fail("DescribeRouteTables", { status: 403, code: "UnauthorizedOperation", message: "You are not authorized to perform this operation." });
        const network = await buildNetwork(client, { egress: "nat" });
        const cfg = onNetwork(stackConfig("prod"), network, await registerImage(client));
        const aws = awsOn(moto.endpoint);
        aws.ec2Endpoint = proxy.endpoint;
        await assert.rejects(runStack("prod", cfg, aws), (e: Error) => {
          assert.ok(pulumi.RunError.isInstance(e));
          assert.equal(
            e.message,
            "kiln could not check the stack's subnets and image in ap-northeast-1 before deploying: UnauthorizedOperation: You are not authorized " +
              "to perform this operation. (the deploying identity needs ec2:DescribeSubnets, DescribeRouteTables, DescribeVpcEndpoints, " +
              "DescribeVpcAttribute and DescribeImages)",
          );
          return true;
        });
        assert.ok(proxy.calls.includes("DescribeRouteTables"), "the failure was the proxy's, on the call it was told to fail");
        assert.deepEqual(aws.created.filter((r) => r.type.startsWith("aws:")), []);
      } finally {
        await proxy.stop();
      }
    });
  });
});

describe("kiln:vpcEndpoints in the Pulumi program, on isolated subnets (moto)", function () {
  let account: TestAccount;
  before(async () => {
    account = await TestAccount.start({ egress: "none", zones: [`${MOTO_REGION}a`, `${MOTO_REGION}c`, `${MOTO_REGION}c`] });
  });
  after(async () => {
    await account?.stop();
  });

  it("creates an interface endpoint per worker service, one subnet per zone, open to the workers only, and S3 on their route table", async () => {
    const cfg = account.stackConfig("prod");
    cfg.values["kiln:vpcEndpoints"] = "true";
    const run = await runStack("prod", cfg, account.fakeAws());
    const endpoints = run.ofType("aws:ec2/vpcEndpoint:VpcEndpoint");
    const interfaces = endpoints.filter((e) => e.inputs.vpcEndpointType === "Interface");
    assert.deepEqual(interfaces.map((e) => e.inputs.serviceName).sort(), ALL_SERVICES.map((s) => `com.amazonaws.${MOTO_REGION}.${s}`).sort());
    const [endpointGroup] = run.ofType("aws:ec2/securityGroup:SecurityGroup").filter((g) => g.name.includes("endpoints"));
    const workerGroupId = (run.constructed.find((c) => c.type === "aws:ec2/securityGroup:SecurityGroup" && !c.name.includes("endpoints"))!.resource as pulumi.CustomResource).id;
    const workerGroup = await new Promise<string>((r) => workerGroupId.apply(r));
    assert.deepEqual(endpointGroup.inputs.ingress.map((i: any) => [i.protocol, i.fromPort, i.toPort, i.securityGroups, i.cidrBlocks ?? []]), [
      ["tcp", 443, 443, [workerGroup], []],
    ]);
    for (const e of interfaces) {
      assert.equal(e.inputs.privateDnsEnabled, true, "the SDK's usual host names resolve to it");
      assert.equal(e.inputs.vpcId, account.network.vpcId);
      assert.deepEqual(e.inputs.subnetIds, [account.network.subnetIds[0], account.network.subnetIds[1]], "the first subnet of each zone");
      assert.equal(e.inputs.tags["kiln:stack"], "prod", "the next survey knows it as this stack's");
    }
    const [s3] = endpoints.filter((e) => e.inputs.vpcEndpointType === "Gateway");
    assert.deepEqual([s3.inputs.serviceName, s3.inputs.routeTableIds], [`com.amazonaws.${MOTO_REGION}.s3`, [account.network.routeTableId]]);
  });

  it("without it, stops on the same subnets with the fix", async () => {
    await assert.rejects(runStack("prod", account.stackConfig("prod"), account.fakeAws()), /set `pulumi config set kiln:vpcEndpoints true --stack prod`/);
  });
});

/** The harness's AWS, with the program's own calls sent to `endpoint`. */
function awsOn(endpoint: string): FakeAws {
  const aws = new FakeAws(MOTO_REGION);
  aws.ec2Endpoint = endpoint;
  return aws;
}
