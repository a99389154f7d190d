import { strict as assert } from "node:assert";
import {
  AuthorizeSecurityGroupIngressCommandInput,
  CreateSecurityGroupCommandInput,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { securityGroupStep, stepSecurityGroup } from "../../ami/steps/security-group";
import { fakeBakeState } from "../support/fake-aws/bake-state";
import { ec2Error, FakeEc2, NO_LEFTOVERS } from "../support/fake-aws/ec2";
import { context, rejectsWithStep } from "./aws-step-helpers";

describe("step security-group", () => {
  let fake: FakeEc2;
  beforeEach(() => (fake = new FakeEc2()));
  afterEach(() => fake.restore());

  async function launchInto(groupId: string): Promise<string> {
    const out = await fake.ec2.send(
      new RunInstancesCommand({ ImageId: fake.al2023.x86_64, InstanceType: "t3.medium", SubnetId: fake.publicSubnetId, SecurityGroupIds: [groupId], MinCount: 1, MaxCount: 1 }),
    );
    return out.Instances![0].InstanceId!;
  }

  it("makes a group in the subnet's VPC, tagged for the build, allowing TCP 22 from kiln:bake.sshCidr only", async () => {
    const state = fakeBakeState(fake, { settings: { sshCidr: "198.51.100.0/24" } });
    await stepSecurityGroup.run(state, context());
    const [create] = fake.inputs<CreateSecurityGroupCommandInput>("CreateSecurityGroup");
    assert.equal(create.VpcId, fake.defaultVpcId);
    assert.equal(create.GroupName, `kiln-builder-${state.buildId}`);
    const tags = Object.fromEntries(create.TagSpecifications![0].Tags!.map((t) => [t.Key, t.Value]));
    assert.deepEqual([tags["kiln:builder"], tags["kiln:build-id"], tags["kiln:stack"]], ["true", state.buildId, "test"]);
    const [rule] = fake.inputs<AuthorizeSecurityGroupIngressCommandInput>("AuthorizeSecurityGroupIngress");
    assert.equal(rule.GroupId, state.securityGroupId);
    assert.deepEqual(
      rule.IpPermissions!.map((p) => [p.IpProtocol, p.FromPort, p.ToPort, p.IpRanges!.map((r) => r.CidrIp)]),
      [["tcp", 22, 22, ["198.51.100.0/24"]]],
    );
    assert.deepEqual(fake.securityGroups.get(state.securityGroupId!)!.ingress.length, 1);
    await stepSecurityGroup.cleanup!(state, context());
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("without kiln:bake.sshCidr, allows the caller's own address (/32, or /128 for IPv6)", async () => {
    const seen: AbortSignal[] = [];
    const v4 = securityGroupStep({ callerAddress: async (signal) => (seen.push(signal), "192.0.2.44\n") });
    const state = fakeBakeState(fake, { settings: { sshCidr: "" } });
    await v4.run(state, context());
    assert.equal(seen.length, 1);
    assert.equal(fake.inputs<AuthorizeSecurityGroupIngressCommandInput>("AuthorizeSecurityGroupIngress")[0].IpPermissions![0].IpRanges![0].CidrIp, "192.0.2.44/32");

    const v6 = securityGroupStep({ callerAddress: async () => "2001:db8::7" });
    await v6.run(fakeBakeState(fake, { settings: { sshCidr: "" } }), context());
    assert.equal(fake.inputs<AuthorizeSecurityGroupIngressCommandInput>("AuthorizeSecurityGroupIngress")[1].IpPermissions![0].Ipv6Ranges![0].CidrIpv6, "2001:db8::7/128");
  });

  it("says to set kiln:bake.sshCidr when the caller's address cannot be found, before creating anything", async () => {
    const broken = securityGroupStep({ callerAddress: async () => Promise.reject(new Error("getaddrinfo ENOTFOUND checkip.amazonaws.com")) });
    const e = await rejectsWithStep(broken.run(fakeBakeState(fake, { settings: { sshCidr: "" } }), context()), "security-group", undefined, /ENOTFOUND/);
    assert.match(e.hint!, /kiln:bake\.sshCidr/);
    const html = securityGroupStep({ callerAddress: async () => "<html>" });
    await rejectsWithStep(html.run(fakeBakeState(fake, { settings: { sshCidr: "" } }), context()), "security-group", undefined, /not an IP/);
    await rejectsWithStep(stepSecurityGroup.run(fakeBakeState(fake, { settings: { sshCidr: "10.0.0.0/33" } }), context()), "security-group", undefined, /not a CIDR/);
    assert.deepEqual(fake.mutations(), []);
  });

  for (const operation of ["DescribeSubnets", "CreateSecurityGroup", "AuthorizeSecurityGroupIngress"]) {
    it(`reports ${operation} failing, and its cleanup leaves no group`, async () => {
      const state = fakeBakeState(fake);
      fake.failNext(operation, ec2Error("UnauthorizedOperation", "You are not authorized to perform this operation.", 403));
      await rejectsWithStep(stepSecurityGroup.run(state, context()), "security-group", "UnauthorizedOperation");
      assert.equal(!!state.securityGroupId, operation === "AuthorizeSecurityGroupIngress", "the id is recorded as soon as the group exists");
      await stepSecurityGroup.cleanup!(state, context());
      await stepSecurityGroup.cleanup!(state, context());
      assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
    });
  }

  it("retries the delete on DependencyViolation until the instance using it has gone", async () => {
    const state = fakeBakeState(fake);
    await stepSecurityGroup.run(state, context());
    const id = await launchInto(state.securityGroupId!);
    await fake.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    // A while later the instance is terminated; its network interface lingers for three more attempts.
    const timer = setTimeout(() => {
      fake.settle();
      fake.instances.get(id)!.eniLingers = 3;
    }, 15);
    const ctx = context();
    await stepSecurityGroup.cleanup!(state, ctx);
    clearTimeout(timer);
    const attempts = fake.calls.filter((c) => c.operation === "DeleteSecurityGroup");
    assert.ok(attempts.length >= 5, `retried (${attempts.length} attempts)`);
    assert.ok(attempts.slice(0, -1).every((c) => c.error?.name === "DependencyViolation"));
    assert.equal(attempts.at(-1)!.error, undefined);
    assert.equal(ctx.lines.filter((l) => /still in use/.test(l)).length, 1, "says so once");
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("gives up on DependencyViolation at its deadline, naming the group", async () => {
    const state = fakeBakeState(fake, { settings: { instanceTimeout: 0.05 } });
    await stepSecurityGroup.run(state, context());
    await launchInto(state.securityGroupId!);
    const t0 = Date.now();
    const e = await rejectsWithStep(stepSecurityGroup.cleanup!(state, context()), "security-group", "DependencyViolation", new RegExp(state.securityGroupId!));
    assert.ok(Date.now() - t0 < 1000);
    assert.match(e.hint!, /--reap|later/);
  });
});
