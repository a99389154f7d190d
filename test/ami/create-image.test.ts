import { strict as assert } from "node:assert";
import { CreateImageCommand, CreateImageCommandInput, CreateTagsCommandInput, ModifyImageAttributeCommandInput } from "@aws-sdk/client-ec2";
import { stepCreateImage } from "../../ami/steps/create-image";
import { stepKeyPair } from "../../ami/steps/key-pair";
import { stepResolveBaseImage } from "../../ami/steps/resolve-base-image";
import { stepRunBuilder } from "../../ami/steps/run-builder";
import { stepSecurityGroup } from "../../ami/steps/security-group";
import type { BakeState } from "../../ami/state";
import { networkError } from "../support/fake-aws";
import { fakeBakeState } from "../support/fake-aws/bake-state";
import { ec2Error, FakeEc2, NO_LEFTOVERS } from "../support/fake-aws/ec2";
import { cleanupAll, context, rejectsWithStep, runAll } from "./aws-step-helpers";

const BEFORE = [stepResolveBaseImage, stepKeyPair, stepSecurityGroup, stepRunBuilder];
const ALL = [...BEFORE, stepCreateImage];

describe("step create-image", () => {
  let fake: FakeEc2;
  beforeEach(() => (fake = new FakeEc2()));
  afterEach(() => fake.restore());

  async function ready(over: Parameters<typeof fakeBakeState>[1] = {}): Promise<BakeState> {
    const state = fakeBakeState(fake, over);
    await runAll(state, BEFORE);
    return state;
  }

  async function undo(state: BakeState): Promise<void> {
    fake.clearFailures();
    await cleanupAll({ ...state, settings: { ...state.settings, instanceTimeout: 5 } }, ALL);
  }

  it("stops the builder, makes an encrypted, tagged, IMDSv2-only image and records it with its snapshots", async () => {
    const state = await ready({ settings: { tags: { Team: "files", CostCentre: "42" } } });
    await stepCreateImage.run(state, context());
    const ops = fake.operations();
    assert.ok(ops.indexOf("StopInstances") < ops.indexOf("CreateImage"), "stopped before the image is taken");
    const [input] = fake.inputs<CreateImageCommandInput>("CreateImage");
    assert.equal(input.InstanceId, state.instanceId);
    assert.equal(input.Name, state.imageName);
    assert.deepEqual(input.BlockDeviceMappings, [
      { DeviceName: "/dev/xvda", Ebs: { Encrypted: true, VolumeType: "gp3", VolumeSize: 30, DeleteOnTermination: true } },
    ]);
    assert.deepEqual(input.TagSpecifications!.map((t) => t.ResourceType), ["image", "snapshot"]);
    const tags = Object.fromEntries(input.TagSpecifications![0].Tags!.map((t) => [t.Key, t.Value]));
    assert.deepEqual(
      {
        stack: tags["kiln:stack"],
        hash: tags["kiln:content-hash"],
        commit: tags["kiln:git-commit"],
        base: tags["kiln:base-image"],
        build: tags["kiln:build-id"],
        managed: tags.ManagedBy,
        team: tags.Team,
        cost: tags.CostCentre,
      },
      { stack: "test", hash: "c0ffee", commit: state.gitCommit, base: state.baseImageId, build: state.buildId, managed: "kiln", team: "files", cost: "42" },
    );
    assert.deepEqual(fake.inputs<ModifyImageAttributeCommandInput>("ModifyImageAttribute"), [{ ImageId: state.imageId, ImdsSupport: { Value: "v2.0" } }]);

    const image = fake.images.get(state.imageId!)!;
    assert.equal(image.state, "available");
    assert.equal(image.imdsSupport, "v2.0");
    assert.equal(image.devices[0].encrypted, true);
    assert.deepEqual(state.snapshotIds, [image.devices[0].snapshotId]);
    assert.equal(fake.snapshots.get(state.snapshotIds![0])!.tags["kiln:content-hash"], "c0ffee");
    // Snapshots tagged at creation need no CreateTags; the last call marks the image complete.
    assert.deepEqual(fake.inputs("CreateTags"), [{ Resources: [state.imageId], Tags: [{ Key: "kiln:complete", Value: "true" }] }]);
    assert.equal(image.tags["kiln:complete"], "true");
    assert.equal(state.imageDone, true);

    await cleanupAll(state, ALL);
    assert.equal(fake.images.get(state.imageId!)!.state, "available", "a finished image stays");
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("tags snapshots that came out untagged", async () => {
    const state = await ready();
    fake.options.imageTicks = Infinity;
    const running = stepCreateImage.run(state, context());
    while (![...fake.images.values()].some((i) => i.sourceInstanceId === state.instanceId)) await new Promise((r) => setTimeout(r, 1));
    const image = [...fake.images.values()].find((i) => i.sourceInstanceId === state.instanceId)!;
    fake.snapshots.get(image.devices[0].snapshotId!)!.tags = {};
    fake.settle();
    await running;
    const [tagging] = fake.inputs<CreateTagsCommandInput>("CreateTags");
    assert.deepEqual(tagging.Resources, state.snapshotIds);
    assert.equal(fake.snapshots.get(state.snapshotIds![0])!.tags["kiln:stack"], "test");
    await cleanupAll(state, ALL);
  });

  it("fails on an image that fails, with AWS's reason, and its cleanup deregisters it and deletes its snapshots", async () => {
    const state = await ready();
    fake.failNextImage("Client.InternalError", "Client.InternalError: snapshot creation failed");
    await rejectsWithStep(stepCreateImage.run(state, context()), "create-image", "Client.InternalError", /failed: .*snapshot creation failed/);
    assert.ok(state.imageId);
    assert.deepEqual(fake.leftovers().images, [state.imageId]);
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.deregistered, [state.imageId]);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("gives up on an image still pending at kiln's imageTimeout, and deregisters it", async () => {
    const state = await ready({ settings: { imageTimeout: 0.05 } });
    fake.options.imageTicks = Infinity;
    const t0 = Date.now();
    await rejectsWithStep(stepCreateImage.run(state, context()), "create-image", undefined, /gave up after 0\.05s waiting for image ami-/);
    assert.ok(Date.now() - t0 < 1000);
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("stops waiting at once when aborted, and its cleanup leaves no half-made image", async () => {
    const state = await ready({ settings: { imageTimeout: 600, pollMs: 5 } });
    fake.options.imageTicks = Infinity;
    const ctx = context();
    setTimeout(() => ctx.abort.abort(), 20);
    const t0 = Date.now();
    await rejectsWithStep(stepCreateImage.run(state, ctx), "create-image", undefined, /interrupted while waiting for image/);
    assert.ok(Date.now() - t0 < 500);
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  for (const [operation, code, skip] of [
    ["StopInstances", "IncorrectInstanceState", 0],
    ["CreateImage", "InvalidAMIName.Duplicate", 0],
    ["DescribeImages", "UnauthorizedOperation", 1],
    ["ModifyImageAttribute", "UnauthorizedOperation", 0],
    ["DescribeSnapshots", "UnauthorizedOperation", 0],
  ] as const) {
    it(`reports ${operation} failing with ${code}${skip ? " later" : ""}; the cleanups leave nothing behind`, async () => {
      const state = await ready();
      fake.failNext(operation, ec2Error(code, `${code}!`), 1, skip);
      await rejectsWithStep(stepCreateImage.run(state, context()), "create-image", code);
      assert.notEqual(state.imageDone, true);
      await undo(state);
      assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
    });
  }

  it("rides out throttling and AWS-side errors in its status polls, past the SDK's attempts, within the deadline", async () => {
    const state = await ready();
    fake.failNext("DescribeInstances", ec2Error("RequestLimitExceeded", "Request limit exceeded.", 503), 5);
    fake.failNext("DescribeImages", ec2Error("InternalError", "An internal error has occurred", 500), 5);
    const ctx = context();
    await stepCreateImage.run(state, ctx);
    assert.equal(state.imageDone, true);
    assert.equal(fake.calls.filter((c) => c.operation === "DescribeInstances" && c.error).length, 5);
    assert.ok(ctx.lines.some((l) => /Request limit exceeded.*still waiting for instance/.test(l)), ctx.lines.join("\n"));
  });

  it("gives up on a poll that stays throttled at the deadline, naming the throttling", async () => {
    const state = await ready({ settings: { instanceTimeout: 0.2 } });
    fake.failNext("DescribeInstances", ec2Error("RequestLimitExceeded", "Request limit exceeded.", 503), Infinity);
    await rejectsWithStep(stepCreateImage.run(state, context()), "create-image", "RequestLimitExceeded");
    await undo(state);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("finds an image whose CreateImage answer was lost, by the build's tag, and removes it", async () => {
    const state = await ready();
    fake.handle("ec2", CreateImageCommand, (input) => {
      fake.imageApi.createImage(input);
      throw networkError("ECONNRESET", "ec2.ap-northeast-1.amazonaws.com");
    });
    await rejectsWithStep(stepCreateImage.run(state, context()), "create-image", "ECONNRESET");
    assert.equal(state.imageId, undefined);
    assert.equal(fake.leftovers().images.length, 1);
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("reports a snapshot that will not go, naming it; a second cleanup finishes the job", async () => {
    const state = await ready();
    fake.failNextImage();
    await assert.rejects(stepCreateImage.run(state, context()));
    fake.failNext("DeleteSnapshot", ec2Error("UnauthorizedOperation", "no", 403));
    const e = await rejectsWithStep(stepCreateImage.cleanup!(state, context()), "create-image", "UnauthorizedOperation", /snap-/);
    assert.match(e.hint!, /yourself/);
    await cleanupAll(state, ALL);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("has an idempotent cleanup, safe before anything was made", async () => {
    const state = await ready();
    await stepCreateImage.cleanup!(state, context());
    fake.failNextImage();
    await assert.rejects(stepCreateImage.run(state, context()));
    await stepCreateImage.cleanup!(state, context());
    await stepCreateImage.cleanup!(state, context());
    await cleanupAll(state, BEFORE);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });
});
