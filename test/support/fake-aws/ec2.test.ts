import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateImageCommand,
  CreateKeyPairCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeImagesCommandInput,
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeKeyPairsCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeRegionsCommand,
  DescribeSubnetsCommand,
  EC2ServiceException,
  RunInstancesCommand,
  RunInstancesCommandInput,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { GetParameterCommand } from "@aws-sdk/client-ssm";
import { AL2023_PARAMETER_PREFIX, ec2Error, FakeEc2, NO_LEFTOVERS } from "./ec2";

describe("the fake EC2 the bake steps are tested against", () => {
  let fake: FakeEc2;
  beforeEach(() => (fake = new FakeEc2()));
  afterEach(() => fake.restore());

  async function keyAndGroup() {
    await fake.ec2.send(new CreateKeyPairCommand({ KeyName: "k", KeyType: "ed25519" }));
    const sg = await fake.ec2.send(new CreateSecurityGroupCommand({ GroupName: "g", Description: "g", VpcId: fake.defaultVpcId }));
    return sg.GroupId!;
  }

  function launchInput(over: Partial<RunInstancesCommandInput> = {}): RunInstancesCommandInput {
    return { ImageId: fake.al2023.x86_64, InstanceType: "t3.medium", SubnetId: fake.publicSubnetId, MinCount: 1, MaxCount: 1, ...over };
  }

  async function describe(id: string) {
    const out = await fake.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return out.Reservations![0].Instances![0];
  }

  it("holds AL2023 for both architectures behind its public SSM parameters, and instance types of both", async () => {
    for (const arch of ["x86_64", "arm64"] as const) {
      const p = await fake.ssm.send(new GetParameterCommand({ Name: `${AL2023_PARAMETER_PREFIX}${arch}` }));
      const image = (await fake.ec2.send(new DescribeImagesCommand({ ImageIds: [p.Parameter!.Value!] }))).Images![0];
      assert.equal(image.Architecture, arch);
      assert.equal(image.State, "available");
      assert.equal(image.ImageOwnerAlias, "amazon");
    }
    await assert.rejects(fake.ssm.send(new GetParameterCommand({ Name: "/aws/service/nope" })), { name: "ParameterNotFound" });
    const types = await fake.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ["t3.medium", "t4g.medium"] }));
    assert.deepEqual(types.InstanceTypes!.map((t) => [t.InstanceType, t.ProcessorInfo!.SupportedArchitectures]), [
      ["t3.medium", ["x86_64"]],
      ["t4g.medium", ["arm64"]],
    ]);
    await assert.rejects(fake.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ["t9.huge" as never] })), { name: "InvalidInstanceType" });
  });

  it("fails like the SDK does: EC2ServiceException, the code as name, the HTTP status", async () => {
    const e = await fake.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ["subnet-0123456789abcdef0"] })).catch((x) => x);
    assert.ok(e instanceof EC2ServiceException);
    assert.equal(e.name, "InvalidSubnetID.NotFound");
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.$fault, "client");
    assert.match(e.message, /subnet-0123456789abcdef0/);
    await assert.rejects(fake.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ["sub-1"] })), { name: "InvalidSubnetID.Malformed" });
    await assert.rejects(fake.ec2.send(new DescribeRegionsCommand({ RegionNames: ["xx-nowhere-1"] })), { name: "InvalidParameterValue" });
    const all = await fake.ec2.send(new DescribeRegionsCommand({ AllRegions: true }));
    assert.equal(all.Regions!.find((r) => r.RegionName === "af-south-1")?.OptInStatus, "not-opted-in");
  });

  it("fails any call on demand, a number of times after some let through, and records every call", async () => {
    fake.failNext("DescribeRegions", ec2Error("UnauthorizedOperation", "You are not authorized to perform this operation.", 403), 2, 1);
    const call = () => fake.ec2.send(new DescribeRegionsCommand({}));
    await call();
    await assert.rejects(call(), { name: "UnauthorizedOperation", $metadata: { httpStatusCode: 403 } });
    await assert.rejects(call(), { name: "UnauthorizedOperation" });
    await call();
    assert.deepEqual(fake.calls.map((c) => [c.service, c.operation, c.error?.name]), [
      ["ec2", "DescribeRegions", undefined],
      ["ec2", "DescribeRegions", "UnauthorizedOperation"],
      ["ec2", "DescribeRegions", "UnauthorizedOperation"],
      ["ec2", "DescribeRegions", undefined],
    ]);
  });

  it("makes real ed25519 keys in OpenSSH's format, refuses a duplicate name, deletes an unknown name quietly", async () => {
    const out = await fake.ec2.send(new CreateKeyPairCommand({ KeyName: "kiln-builder-x", KeyType: "ed25519", KeyFormat: "pem" }));
    assert.match(out.KeyMaterial!, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    const described = await fake.ec2.send(new DescribeKeyPairsCommand({ KeyNames: ["kiln-builder-x"], IncludePublicKey: true }));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-fake-key-"));
    try {
      fs.writeFileSync(path.join(dir, "key"), out.KeyMaterial!, { mode: 0o600 });
      const pub = execFileSync("ssh-keygen", ["-y", "-f", path.join(dir, "key")], { encoding: "utf8" }).trim();
      assert.equal(pub.split(" ").slice(0, 2).join(" "), described.KeyPairs![0].PublicKey);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    await assert.rejects(fake.ec2.send(new CreateKeyPairCommand({ KeyName: "kiln-builder-x", KeyType: "ed25519" })), { name: "InvalidKeyPair.Duplicate" });
    await fake.ec2.send(new DeleteKeyPairCommand({ KeyName: "never-made" }));
    await assert.rejects(fake.ec2.send(new DeleteKeyPairCommand({ KeyPairId: "key-0123456789abcdef0" })), { name: "InvalidKeyPair.NotFound" });
    await fake.ec2.send(new DeleteKeyPairCommand({ KeyPairId: out.KeyPairId }));
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("validates RunInstances as EC2 does", async () => {
    const sg = await keyAndGroup();
    const otherVpc = fake.addVpc();
    const foreign = (await fake.ec2.send(new CreateSecurityGroupCommand({ GroupName: "x", Description: "x", VpcId: otherVpc }))).GroupId!;
    const cases: [Partial<RunInstancesCommandInput>, string][] = [
      [{ ImageId: "ami-0123456789abcdef0" }, "InvalidAMIID.NotFound"],
      [{ ImageId: "image-1" }, "InvalidAMIID.Malformed"],
      [{ InstanceType: "t4g.medium" }, "InvalidParameterValue"],
      [{ InstanceType: "t9.huge" as never }, "InvalidParameterValue"],
      [{ SubnetId: "subnet-0123456789abcdef0" }, "InvalidSubnetID.NotFound"],
      [{ SecurityGroupIds: ["sg-0123456789abcdef0"] }, "InvalidGroup.NotFound"],
      [{ SecurityGroupIds: [foreign] }, "InvalidParameter"],
      [{ KeyName: "nope" }, "InvalidKeyPair.NotFound"],
      [{ MetadataOptions: { HttpTokens: "always" as never } }, "InvalidParameterValue"],
      [{ BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { VolumeSize: 4 } }] }, "InvalidBlockDeviceMapping"],
      [{ BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { VolumeType: "gp9" as never } }] }, "InvalidParameterValue"],
      [{ UserData: "not base64!" }, "InvalidParameterValue"],
      [{ UserData: Buffer.alloc(16385).toString("base64") }, "InvalidParameterValue"],
      [{ TagSpecifications: [{ ResourceType: "image", Tags: [] }] }, "InvalidParameterValue"],
      [{ TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "aws:x", Value: "1" }] }] }, "InvalidParameterValue"],
      [{ InstanceInitiatedShutdownBehavior: "explode" as never }, "InvalidParameterValue"],
    ];
    for (const [over, code] of cases) {
      await assert.rejects(fake.ec2.send(new RunInstancesCommand(launchInput({ SecurityGroupIds: [sg], KeyName: "k", ...over }))), { name: code }, JSON.stringify(over));
    }
    assert.equal(fake.instances.size, 0, "nothing launched by a refused call");
  });

  it("moves an instance pending → running on Describe calls, gives a public address only in a public subnet", async () => {
    const sg = await keyAndGroup();
    const pub = (await fake.ec2.send(new RunInstancesCommand(launchInput({ SecurityGroupIds: [sg], KeyName: "k" })))).Instances![0];
    assert.equal(pub.State!.Name, "pending");
    assert.equal(pub.PublicIpAddress, undefined);
    const running = await describe(pub.InstanceId!);
    assert.equal(running.State!.Name, "running");
    assert.match(running.PublicIpAddress!, /^203\.0\.113\./);
    assert.equal(running.MetadataOptions!.HttpTokens, "required", "AL2023's ImdsSupport v2.0 makes IMDSv2 the default");
    const priv = (await fake.ec2.send(new RunInstancesCommand(launchInput({ SubnetId: fake.privateSubnetId, SecurityGroupIds: [sg] })))).Instances![0];
    const p = await describe(priv.InstanceId!);
    assert.equal(p.PublicIpAddress, undefined);
    assert.match(p.PrivateIpAddress!, /^172\.31\./);

    await fake.ec2.send(new StopInstancesCommand({ InstanceIds: [pub.InstanceId!] }));
    assert.equal((await describe(pub.InstanceId!)).State!.Name, "stopped");
    await fake.ec2.send(new TerminateInstancesCommand({ InstanceIds: [pub.InstanceId!, priv.InstanceId!] }));
    await assert.rejects(fake.ec2.send(new StopInstancesCommand({ InstanceIds: [pub.InstanceId!] })), { name: "IncorrectInstanceState" });
    assert.equal((await describe(pub.InstanceId!)).State!.Name, "terminated");
    await assert.rejects(fake.ec2.send(new TerminateInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"] })), { name: "InvalidInstanceID.NotFound" });
  });

  it("returns the same instance for a repeated ClientToken, and can fail a launch or hide a new id for a while", async () => {
    const first = await fake.ec2.send(new RunInstancesCommand(launchInput({ ClientToken: "t-1" })));
    const again = await fake.ec2.send(new RunInstancesCommand(launchInput({ ClientToken: "t-1" })));
    assert.equal(again.Instances![0].InstanceId, first.Instances![0].InstanceId);
    assert.equal(fake.instances.size, 1);

    fake.failNextLaunch("Server.InsufficientInstanceCapacity", "Insufficient capacity.");
    const doomed = (await fake.ec2.send(new RunInstancesCommand(launchInput()))).Instances![0].InstanceId!;
    const ended = await describe(doomed);
    assert.equal(ended.State!.Name, "terminated");
    assert.equal(ended.StateReason!.Code, "Server.InsufficientInstanceCapacity");

    fake.options.notFoundDescribes = 2;
    const shy = (await fake.ec2.send(new RunInstancesCommand(launchInput()))).Instances![0].InstanceId!;
    await assert.rejects(describe(shy), { name: "InvalidInstanceID.NotFound" });
    await assert.rejects(describe(shy), { name: "InvalidInstanceID.NotFound" });
    assert.ok(await describe(shy));
  });

  it("keeps a security group busy while an instance uses it, and for a while after (the ENI)", async () => {
    const sg = await keyAndGroup();
    const id = (await fake.ec2.send(new RunInstancesCommand(launchInput({ SecurityGroupIds: [sg] })))).Instances![0].InstanceId!;
    await assert.rejects(fake.ec2.send(new DeleteSecurityGroupCommand({ GroupId: sg })), { name: "DependencyViolation" });
    fake.options.eniLingerAttempts = 2;
    await fake.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await describe(id);
    assert.equal(fake.instances.get(id)!.state, "terminated");
    await assert.rejects(fake.ec2.send(new DeleteSecurityGroupCommand({ GroupId: sg })), { name: "DependencyViolation" });
    await assert.rejects(fake.ec2.send(new DeleteSecurityGroupCommand({ GroupId: sg })), { name: "DependencyViolation" });
    await fake.ec2.send(new DeleteSecurityGroupCommand({ GroupId: sg }));
    await assert.rejects(fake.ec2.send(new DeleteSecurityGroupCommand({ GroupId: sg })), { name: "InvalidGroup.NotFound" });
    const dflt = [...fake.securityGroups.values()].find((g) => g.isDefault)!.id;
    await assert.rejects(fake.ec2.send(new DeleteSecurityGroupCommand({ GroupId: dflt })), { name: "CannotDelete" });
    await assert.rejects(fake.ec2.send(new CreateSecurityGroupCommand({ GroupName: "g2", Description: "x", VpcId: "vpc-0123456789abcdef0" })), { name: "InvalidVpcID.NotFound" });
  });

  it("checks ingress rules: the CIDR, duplicates", async () => {
    const sg = await keyAndGroup();
    const rule = (cidr: string) => new AuthorizeSecurityGroupIngressCommand({ GroupId: sg, IpPermissions: [{ IpProtocol: "tcp", FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: cidr }] }] });
    await fake.ec2.send(rule("203.0.113.7/32"));
    await assert.rejects(fake.ec2.send(rule("203.0.113.7/32")), { name: "InvalidPermission.Duplicate" });
    await assert.rejects(fake.ec2.send(rule("203.0.113.7")), { name: "InvalidParameterValue" });
    assert.deepEqual(fake.securityGroups.get(sg)!.ingress.map((p) => p.IpRanges![0].CidrIp), ["203.0.113.7/32"]);
  });

  it("makes an image pending → available with its snapshots; refuses a taken or malformed name; fails one on demand", async () => {
    const id = (await fake.ec2.send(new RunInstancesCommand(launchInput()))).Instances![0].InstanceId!;
    await assert.rejects(fake.ec2.send(new CreateImageCommand({ InstanceId: id, Name: "img-1" })), { name: "IncorrectState" }, "pending");
    await describe(id);
    const ami = (
      await fake.ec2.send(
        new CreateImageCommand({
          InstanceId: id,
          Name: "img-1",
          TagSpecifications: [
            { ResourceType: "image", Tags: [{ Key: "kiln:stack", Value: "t" }] },
            { ResourceType: "snapshot", Tags: [{ Key: "kiln:stack", Value: "t" }] },
          ],
        }),
      )
    ).ImageId!;
    assert.equal(fake.images.get(ami)!.state, "pending");
    assert.deepEqual(fake.leftovers().images, [ami], "a pending image is a leftover");
    const states: string[] = [];
    for (let n = 0; n < 3; n++) states.push((await fake.ec2.send(new DescribeImagesCommand({ ImageIds: [ami] }))).Images![0].State!);
    assert.deepEqual(states, ["pending", "available", "available"]);
    const snap = fake.images.get(ami)!.devices[0].snapshotId!;
    assert.equal(fake.snapshots.get(snap)!.state, "completed");
    assert.deepEqual(fake.snapshots.get(snap)!.tags, { "kiln:stack": "t" });
    await assert.rejects(fake.ec2.send(new CreateImageCommand({ InstanceId: id, Name: "img-1" })), { name: "InvalidAMIName.Duplicate" });
    await assert.rejects(fake.ec2.send(new CreateImageCommand({ InstanceId: id, Name: "img:2026-01-01T00:00:00Z" })), { name: "InvalidAMIName.Malformed" });

    fake.failNextImage("Client.InternalError", "snapshot failed");
    const bad = (await fake.ec2.send(new CreateImageCommand({ InstanceId: id, Name: "img-2" }))).ImageId!;
    fake.settle();
    const failed = (await fake.ec2.send(new DescribeImagesCommand({ ImageIds: [bad] }))).Images![0];
    assert.equal(failed.State, "failed");
    assert.equal(failed.StateReason!.Code, "Client.InternalError");
  });

  it("will not delete a snapshot an image uses; deregistering frees it", async () => {
    const ami = fake.addImage({ name: "old", tags: { "kiln:stack": "t" } });
    const snap = fake.images.get(ami)!.devices[0].snapshotId!;
    await assert.rejects(fake.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snap })), { name: "InvalidSnapshot.InUse" });
    await fake.ec2.send(new DeregisterImageCommand({ ImageId: ami }));
    await assert.rejects(fake.ec2.send(new DescribeImagesCommand({ ImageIds: [ami] })), { name: "InvalidAMIID.NotFound" });
    await fake.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snap }));
    await assert.rejects(fake.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snap })), { name: "InvalidSnapshot.NotFound" });
    assert.deepEqual(fake.deregistered, [ami]);
  });

  it("filters as EC2 does: owners, tags, wildcards; an unknown filter name fails", async () => {
    fake.addImage({ name: "kiln-worker-prod-1", tags: { "kiln:stack": "prod" } });
    fake.addImage({ name: "kiln-worker-dev-1", tags: { "kiln:stack": "dev" } });
    const names = async (input: DescribeImagesCommandInput) =>
      ((await fake.ec2.send(new DescribeImagesCommand(input))).Images ?? []).map((i) => i.Name);
    assert.deepEqual(await names({ Owners: ["self"], Filters: [{ Name: "tag:kiln:stack", Values: ["prod"] }] }), ["kiln-worker-prod-1"]);
    assert.deepEqual(await names({ Owners: ["self"], Filters: [{ Name: "name", Values: ["kiln-worker-*"] }] }), ["kiln-worker-prod-1", "kiln-worker-dev-1"]);
    assert.equal((await names({ Owners: ["amazon"] })).length, 2);
    await assert.rejects(fake.ec2.send(new DescribeImagesCommand({ Filters: [{ Name: "colour", Values: ["red"] }] })), { name: "InvalidParameterValue" });
    await assert.rejects(fake.ec2.send(new DescribeImagesCommand({ ImageIds: [fake.al2023.arm64], MaxResults: 5 })), { name: "InvalidParameterCombination" });
  });

  it("pages launch template versions, and refuses a token from another call", async () => {
    const fakeSmall = new FakeEc2({ pageSize: 2 });
    try {
      const lt = fakeSmall.addLaunchTemplate("workers", ["ami-00000000000000001", undefined, "ami-00000000000000003", "ami-00000000000000004", "ami-00000000000000005"]);
      const seen: (string | undefined)[] = [];
      let NextToken: string | undefined;
      let pages = 0;
      do {
        const out = await fakeSmall.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lt, NextToken }));
        seen.push(...out.LaunchTemplateVersions!.map((v) => v.LaunchTemplateData?.ImageId));
        NextToken = out.NextToken;
        pages++;
      } while (NextToken);
      assert.equal(pages, 3);
      assert.deepEqual(seen, ["ami-00000000000000001", undefined, "ami-00000000000000003", "ami-00000000000000004", "ami-00000000000000005"]);
      const first = await fakeSmall.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lt }));
      await assert.rejects(fakeSmall.ec2.send(new DescribeInstancesCommand({ NextToken: first.NextToken })), { name: "InvalidParameterValue" });
      await assert.rejects(fakeSmall.ec2.send(new DescribeLaunchTemplateVersionsCommand({})), { name: "MissingParameter" });
    } finally {
      fakeSmall.restore();
    }
  });

  it("tags any resource it knows with CreateTags, and says which id it does not", async () => {
    const ami = fake.addImage({ name: "x" });
    await fake.ec2.send(new CreateTagsCommand({ Resources: [ami], Tags: [{ Key: "a", Value: "1" }] }));
    assert.equal(fake.images.get(ami)!.tags.a, "1");
    await assert.rejects(fake.ec2.send(new CreateTagsCommand({ Resources: ["snap-0123456789abcdef0"], Tags: [{ Key: "a", Value: "1" }] })), { name: "InvalidSnapshot.NotFound" });
    await assert.rejects(fake.ec2.send(new CreateTagsCommand({ Resources: [ami], Tags: [{ Key: "aws:x", Value: "1" }] })), { name: "InvalidParameterValue" });
  });

  it("lists what a bake left behind, and not what the account had", async () => {
    fake.addInstance({ imageId: fake.al2023.x86_64 });
    fake.addSecurityGroup({ name: "fleet" });
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
    const sg = await keyAndGroup();
    const id = (await fake.ec2.send(new RunInstancesCommand(launchInput({ SecurityGroupIds: [sg] })))).Instances![0].InstanceId!;
    const orphan = fake.addInstance({ imageId: fake.al2023.x86_64, tags: { "kiln:builder": "true" } });
    assert.deepEqual(fake.leftovers(), { instances: [id, orphan], keyPairs: ["k"], securityGroups: [sg], images: [], snapshots: [] });
    await fake.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id, orphan] }));
    fake.settle();
    await fake.ec2.send(new DeleteSecurityGroupCommand({ GroupId: sg }));
    await fake.ec2.send(new DeleteKeyPairCommand({ KeyName: "k" }));
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });
});
