import { strict as assert } from "node:assert";
import { DescribeImageAttributeCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand } from "@aws-sdk/client-ec2";
import { GetInstanceProfileCommand, GetRolePolicyCommand } from "@aws-sdk/client-iam";
import type { BakeSettings, BakeState } from "../../ami/state";
import { stepCreateImage } from "../../ami/steps/create-image";
import { stepDistribute } from "../../ami/steps/distribute";
import { stepInstanceProfile } from "../../ami/steps/instance-profile";
import { stepKeyPair } from "../../ami/steps/key-pair";
import { stepPreValidate } from "../../ami/steps/pre-validate";
import { stepResolveBaseImage } from "../../ami/steps/resolve-base-image";
import { stepRunBuilder } from "../../ami/steps/run-builder";
import { stepSecurityGroup } from "../../ami/steps/security-group";
import { ec2Error } from "../support/fake-aws";
import { Moto, MOTO_REGION, startMoto } from "../support/moto";
import { motoClients } from "../support/moto-ec2";
import { cleanupAll, context, rejectsWithStep, runAll } from "./aws-step-helpers";

/**
 * The bake's AWS steps against moto's EC2, SSM and IAM: launch, image, copies to another region with
 * customer managed keys, shares, and Session Manager's instance profile. (moto invents the builder's
 * addresses; nothing here connects to them: the SSH steps are not run.)
 */
const ACCOUNT = "111122223333";
let builds = 0;

describe("the bake's AWS steps against moto", function () {
  this.timeout(120_000);
  let moto: Moto;
  let clients: ReturnType<typeof motoClients>;
  let subnetId: string;
  before(async () => (moto = await startMoto()));
  after(async () => moto?.stop());
  beforeEach(async () => {
    await moto.reset();
    clients = motoClients(moto);
    subnetId = (await clients.ec2.send(new DescribeSubnetsCommand({}))).Subnets![0].SubnetId!;
  });

  function state(settings: Partial<BakeSettings> = {}, contentHash = "c0ffee"): BakeState {
    builds++;
    return {
      buildId: `20260101t0000${builds}z-moto`,
      settings: {
        stack: "test", region: MOTO_REGION, instanceType: "t3.medium", subnetId, baseImage: "", sshCidr: "203.0.113.7/32", sshUser: "ec2-user",
        keep: 3, tags: {}, sshTimeout: 5, imageTimeout: 5, builderLifetimeMinutes: 120, rootVolumeSize: 30, instanceTimeout: 5, pollMs: 1, ...settings,
      },
      root: "/nonexistent",
      clients,
      imageName: `kiln-worker-test-2026010${builds}`,
      contentHash,
    };
  }
  const sent = (operation: string, region = MOTO_REGION) => clients.sent.filter((c) => c.operation === operation && c.region === region).map((c) => c.input);
  const BUILD = [stepPreValidate, stepResolveBaseImage, stepKeyPair, stepSecurityGroup, stepInstanceProfile, stepRunBuilder, stepCreateImage];

  it("bakes a complete image encrypted with the stack's key, copies it to another region with that region's key, and shares both", async () => {
    const s = state({ kmsKeyId: "alias/kiln-ami", copyRegions: ["eu-west-1"], regionKmsKeyIds: { "eu-west-1": "alias/kiln-ami-eu" }, shareAccounts: [ACCOUNT] });
    await runAll(s, [...BUILD, stepDistribute]);
    // The image takes the builder volume's key: CreateImage has no KmsKeyId of its own.
    assert.equal((sent("RunInstances")[0].BlockDeviceMappings as { Ebs: { KmsKeyId?: string } }[])[0].Ebs.KmsKeyId, "alias/kiln-ami");
    const [copy] = sent("CopyImage", "eu-west-1");
    assert.deepEqual(
      { source: copy.SourceImageId, region: copy.SourceRegion, encrypted: copy.Encrypted, key: copy.KmsKeyId },
      { source: s.imageId, region: MOTO_REGION, encrypted: true, key: "alias/kiln-ami-eu" },
    );
    // Tagged on create, image and snapshots: the documented policy lets the bake touch only what carries ManagedBy=kiln.
    const onCreate = (copy.TagSpecifications as { ResourceType: string; Tags: { Key: string; Value: string }[] }[]).map((t) => [t.ResourceType, t.Tags.find((x) => x.Key === "ManagedBy")?.Value, t.Tags.find((x) => x.Key === "kiln:source-image")?.Value]);
    assert.deepEqual(onCreate, [["image", "kiln", s.imageId], ["snapshot", "kiln", s.imageId]]);
    const copyId = s.copies!["eu-west-1"];
    const eu = clients.ec2In("eu-west-1");
    const [copied] = (await eu.send(new DescribeImagesCommand({ ImageIds: [copyId] }))).Images!;
    const tags = Object.fromEntries(copied.Tags!.map((t) => [t.Key, t.Value]));
    assert.deepEqual([tags["kiln:complete"], tags["kiln:source-image"], tags["kiln:content-hash"]], ["true", s.imageId, "c0ffee"]);
    for (const [ec2, id] of [[clients.ec2, s.imageId!], [eu, copyId]] as const) {
      const perms = await ec2.send(new DescribeImageAttributeCommand({ ImageId: id, Attribute: "launchPermission" }));
      assert.deepEqual(perms.LaunchPermissions, [{ UserId: ACCOUNT }], id);
    }

    // The builder, key pair and group go; the image and its copy stay.
    await cleanupAll(s, [...BUILD, stepDistribute]);
    const builder = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [s.instanceId!] }))).Reservations![0].Instances![0];
    assert.equal(builder.State?.Name, "terminated");
    assert.equal((await eu.send(new DescribeImagesCommand({ ImageIds: [copyId] }))).Images![0].State, "available");

    // The same content again: the complete copy is found, not made twice.
    const again = state({ copyRegions: ["eu-west-1"], kmsKeyId: "alias/kiln-ami", regionKmsKeyIds: { "eu-west-1": "alias/kiln-ami-eu" } });
    again.reusedImageId = s.imageId;
    const ctx = context();
    await stepDistribute.run(again, ctx);
    assert.equal(again.copies!["eu-west-1"], copyId);
    assert.equal(sent("CopyImage", "eu-west-1").length, 1);
    assert.ok(ctx.lines.some((l) => l.includes(`${copyId} is a complete copy`)));
  });

  it("deregisters a copy that does not finish, and leaves the image it was copied from", async () => {
    const s = state({ copyRegions: ["eu-west-1"] });
    clients.failNext("ModifyImageAttribute", ec2Error("UnauthorizedOperation", "not allowed", 403), "eu-west-1");
    await rejectsWithStep(runAll(s, [...BUILD, stepDistribute]), "distribute", "UnauthorizedOperation");
    const copyId = s.copies!["eu-west-1"];
    const left = (await clients.ec2In("eu-west-1").send(new DescribeImagesCommand({ Owners: ["self"] }))).Images!;
    assert.deepEqual(left.filter((i) => i.ImageId === copyId), [], "the unfinished copy is gone");
    assert.equal((await clients.ec2.send(new DescribeImagesCommand({ ImageIds: [s.imageId!] }))).Images![0].State, "available");
  });

  it("gives a Session Manager builder a temporary instance profile and no inbound rule, and removes the profile", async () => {
    const s = state({ sshInterface: "session_manager" });
    const steps = BUILD.filter((st) => st !== stepPreValidate && st !== stepCreateImage);
    await runAll(s, steps);
    const name = s.builderProfile!.name;
    const profile = await clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }));
    assert.deepEqual(profile.InstanceProfile!.Roles!.map((r) => r.RoleName), [name]);
    const policy = JSON.parse(decodeURIComponent((await clients.iam.send(new GetRolePolicyCommand({ RoleName: name, PolicyName: "session-manager" }))).PolicyDocument!));
    assert.deepEqual(policy.Statement.flatMap((st: { Action: string[] }) => st.Action).sort(), [
      "ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
    ]);
    assert.deepEqual(sent("RunInstances")[0].IamInstanceProfile, { Name: name });
    const group = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [s.securityGroupId!] }))).SecurityGroups![0];
    assert.deepEqual(group.IpPermissions, []);
    assert.equal(s.ssh?.host, s.instanceId, "the target is the instance, not an address");

    await cleanupAll(s, steps);
    await assert.rejects(clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name })), { name: "NoSuchEntityException" });
  });

  it("with session_manager, refuses in pre-validate, before any AWS call, when session-manager-plugin is not on PATH", async () => {
    const before = clients.sent.length;
    const saved = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      const e = await rejectsWithStep(stepPreValidate.run(state({ sshInterface: "session_manager" }), context()), "pre-validate", undefined, /needs AWS's session-manager-plugin, and there is none on this machine's PATH/);
      assert.match(e.hint!, /kiln:bake\.sshInterface private_ip/);
    } finally {
      process.env.PATH = saved;
    }
    assert.equal(clients.sent.length, before, "no AWS call");
  });

  it("with private_ip, allows SSH from the VPC's range and connects to the private address", async () => {
    const s = state({ sshInterface: "private_ip", sshCidr: "" });
    const steps = [stepResolveBaseImage, stepKeyPair, stepSecurityGroup, stepRunBuilder];
    await runAll(s, steps);
    const group = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [s.securityGroupId!] }))).SecurityGroups![0];
    assert.deepEqual(group.IpPermissions![0].IpRanges!.map((r) => r.CidrIp), ["172.31.0.0/16"]);
    const builder = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [s.instanceId!] }))).Reservations![0].Instances![0];
    assert.equal(s.ssh?.host, builder.PrivateIpAddress);
    await cleanupAll(s, steps);
  });
});
