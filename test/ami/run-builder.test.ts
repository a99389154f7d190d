import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RunInstancesCommandInput } from "@aws-sdk/client-ec2";
import { stepKeyPair } from "../../ami/steps/key-pair";
import { stepResolveBaseImage } from "../../ami/steps/resolve-base-image";
import { builderUserData, stepRunBuilder } from "../../ami/steps/run-builder";
import { stepSecurityGroup } from "../../ami/steps/security-group";
import type { BakeState } from "../../ami/state";
import { fakeBakeState } from "../support/fake-aws/bake-state";
import { ec2Error, FakeEc2, NO_LEFTOVERS } from "../support/fake-aws/ec2";
import { cleanupAll, context, rejectsWithStep, runAll } from "./aws-step-helpers";

const BEFORE = [stepResolveBaseImage, stepKeyPair, stepSecurityGroup];
const ALL = [...BEFORE, stepRunBuilder];

describe("step run-builder", () => {
  let fake: FakeEc2;
  beforeEach(() => (fake = new FakeEc2()));
  afterEach(() => fake.restore());

  async function ready(over: Parameters<typeof fakeBakeState>[1] = {}): Promise<BakeState> {
    const state = fakeBakeState(fake, over);
    await runAll(state, BEFORE);
    return state;
  }

  it("launches the builder with IMDSv2 only, an encrypted root, terminate-on-shutdown, tags and a self-destruct timer", async () => {
    const state = await ready({ settings: { rootVolumeSize: 40, builderLifetimeMinutes: 90 } });
    await stepRunBuilder.run(state, context());
    const [input] = fake.inputs<RunInstancesCommandInput>("RunInstances");
    assert.equal(input.ImageId, state.baseImageId);
    assert.equal(input.InstanceType, "t3.medium");
    assert.equal(input.SubnetId, fake.publicSubnetId);
    assert.deepEqual(input.SecurityGroupIds, [state.securityGroupId]);
    assert.equal(input.KeyName, state.keyPair!.name);
    assert.equal(input.MetadataOptions!.HttpTokens, "required");
    assert.deepEqual(input.BlockDeviceMappings, [
      { DeviceName: "/dev/xvda", Ebs: { Encrypted: true, VolumeType: "gp3", VolumeSize: 40, DeleteOnTermination: true } },
    ]);
    assert.equal(input.InstanceInitiatedShutdownBehavior, "terminate");
    assert.equal(input.MinCount, 1);
    assert.equal(input.MaxCount, 1);
    assert.ok(input.ClientToken);
    for (const type of ["instance", "volume"]) {
      const spec = input.TagSpecifications!.find((t) => t.ResourceType === type)!;
      const tags = Object.fromEntries(spec.Tags!.map((t) => [t.Key, t.Value]));
      assert.equal(tags["kiln:builder"], "true");
      assert.equal(tags["kiln:build-id"], state.buildId);
      assert.equal(tags["kiln:stack"], "test");
      assert.match(tags.Name, /^kiln-builder-test-/);
    }
    const userData = Buffer.from(input.UserData!, "base64").toString();
    assert.match(userData, /^#cloud-config\n/);
    assert.match(userData, /--on-active=90min .*systemctl poweroff \|\| shutdown -h \+90/);

    const instance = fake.instances.get(state.instanceId!)!;
    assert.equal(instance.state, "running");
    assert.equal(instance.volumes[0].encrypted, true);
    assert.equal(instance.metadataOptions.HttpTokens, "required");
    assert.deepEqual(state.ssh, { host: instance.publicIp, port: 22, user: "ec2-user", privateKey: state.keyPair!.privateKey });

    await cleanupAll(state, ALL);
    assert.equal(fake.instances.get(state.instanceId!)!.state, "terminated");
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("writes user data that cloud-init's own schema accepts", function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-builder-ud-"));
    try {
      const file = path.join(dir, "user-data");
      fs.writeFileSync(file, builderUserData(120));
      const r = spawnSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8" });
      if (r.error) throw new Error("cloud-init is not installed: .ci/run installs it");
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /Valid/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("connects to the address the fake is told to give (a local sshd standing in for the builder)", async () => {
    fake.options.publicIp = "127.0.0.1";
    const state = await ready();
    await stepRunBuilder.run(state, context());
    assert.equal(state.ssh!.host, "127.0.0.1");
    await cleanupAll(state, ALL);
  });

  it("connects to the private address in a subnet without public ones", async () => {
    const state = await ready({ settings: { subnetId: fake.privateSubnetId } });
    await stepRunBuilder.run(state, context());
    assert.equal(state.ssh!.host, fake.instances.get(state.instanceId!)!.privateIp);
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("waits out DescribeInstances not knowing the new instance yet", async () => {
    fake.options.notFoundDescribes = 3;
    const state = await ready();
    await stepRunBuilder.run(state, context());
    assert.ok(state.ssh);
    await cleanupAll(state, ALL);
  });

  it("reports RunInstances failing for capacity with what to do, and leaves nothing", async () => {
    const state = await ready();
    fake.failNext("RunInstances", ec2Error("InsufficientInstanceCapacity", "We currently do not have sufficient t3.medium capacity in the Availability Zone you requested.", 500));
    const e = await rejectsWithStep(stepRunBuilder.run(state, context()), "run-builder", "InsufficientInstanceCapacity", /t3\.medium/);
    assert.match(e.hint!, /instanceType|subnetId/);
    assert.equal(state.instanceId, undefined);
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("reports an instance that ends before running with AWS's state reason", async () => {
    const state = await ready();
    fake.failNextLaunch("Server.InsufficientInstanceCapacity", "Server.InsufficientInstanceCapacity: Insufficient capacity.");
    await rejectsWithStep(stepRunBuilder.run(state, context()), "run-builder", "Server.InsufficientInstanceCapacity", /terminated/);
    assert.ok(state.instanceId, "recorded before the wait");
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("reports DescribeInstances failing, and its cleanup terminates the instance it recorded", async () => {
    const state = await ready();
    fake.failNext("DescribeInstances", ec2Error("UnauthorizedOperation", "no", 403));
    await rejectsWithStep(stepRunBuilder.run(state, context()), "run-builder", "UnauthorizedOperation");
    assert.ok(state.instanceId);
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("gives up waiting for running at its deadline", async () => {
    fake.options.instanceTicks = Infinity;
    const state = await ready({ settings: { instanceTimeout: 0.05 } });
    const t0 = Date.now();
    await rejectsWithStep(stepRunBuilder.run(state, context()), "run-builder", undefined, /gave up after 0\.05s waiting for instance .* to be running/);
    assert.ok(Date.now() - t0 < 1000);
    fake.options.instanceTicks = 1;
    await cleanupAll(fakeWith(state, { instanceTimeout: 5 }), ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("stops waiting at once when aborted (Ctrl-C), and its cleanup still terminates the instance", async () => {
    fake.options.instanceTicks = Infinity;
    const state = await ready({ settings: { instanceTimeout: 60, pollMs: 5 } });
    const ctx = context();
    setTimeout(() => ctx.abort.abort(), 20);
    const t0 = Date.now();
    await rejectsWithStep(stepRunBuilder.run(state, ctx), "run-builder", undefined, /interrupted/);
    assert.ok(Date.now() - t0 < 500, `${Date.now() - t0} ms`);
    fake.options.instanceTicks = 1;
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("has an idempotent cleanup that survives an instance already gone", async () => {
    const state = await ready();
    await stepRunBuilder.cleanup!(state, context());
    await stepRunBuilder.run(state, context());
    await stepRunBuilder.cleanup!(state, context());
    await stepRunBuilder.cleanup!(state, context());
    fake.instances.delete(state.instanceId!);
    await stepRunBuilder.cleanup!(state, context());
    await cleanupAll(state, BEFORE);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("reports TerminateInstances failing in its cleanup, naming the instance", async () => {
    const state = await ready();
    await stepRunBuilder.run(state, context());
    fake.failNext("TerminateInstances", ec2Error("UnauthorizedOperation", "no", 403));
    const e = await rejectsWithStep(stepRunBuilder.cleanup!(state, context()), "run-builder", "UnauthorizedOperation", new RegExp(state.instanceId!));
    assert.match(e.hint!, /--reap/);
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });
});

function fakeWith(state: BakeState, settings: Partial<BakeState["settings"]>): BakeState {
  return { ...state, settings: { ...state.settings, ...settings } };
}
