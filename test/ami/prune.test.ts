import { strict as assert } from "node:assert";
import { findImageByContentHash, pruneImages } from "../../ami/prune";
import { ec2Error, FakeEc2, NO_LEFTOVERS } from "../support/fake-aws/ec2";
import { rejectsWithStep } from "./aws-step-helpers";

const day = (n: number) => new Date(Date.UTC(2026, 0, n));
const kiln = (stack: string, hash = "h", complete = true) => ({
  "kiln:stack": stack,
  ManagedBy: "kiln",
  "kiln:content-hash": hash,
  ...(complete ? { "kiln:complete": "true" } : {}),
});

describe("prune", () => {
  let fake: FakeEc2;
  // Small pages: every list prune reads (images, templates, versions, instances) spans several.
  beforeEach(() => (fake = new FakeEc2({ pageSize: 2 })));
  afterEach(() => fake.restore());

  /** Seven prod images a day apart, each with a reason to be kept or not, and others prune must not see. */
  function account() {
    const img = (n: number, extra: Partial<Parameters<FakeEc2["addImage"]>[0]> = {}) =>
      fake.addImage({ name: `kiln-worker-prod-2026010${n}`, tags: kiln("prod"), created: day(n), ...extra });
    const a = {
      terminatedOnly: img(1),
      running: img(2),
      inDefaultVersion: img(3),
      inOldVersion: img(4),
      stopped: img(5),
      second: img(6),
      newest: img(7),
      pending: img(8, { state: "pending" }),
      failed: img(9, { state: "failed" }),
      // A bake killed between CreateImage and its end left these: no kiln:complete tag.
      incompleteOld: fake.addImage({ name: "kiln-worker-prod-killed", tags: { ...kiln("prod", "h", false), "kiln:build-id": "dead" }, created: day(10) }),
      incompleteYoung: fake.addImage({ name: "kiln-worker-prod-finishing", tags: { ...kiln("prod", "h", false), "kiln:build-id": "live" }, created: new Date() }),
      otherStack: fake.addImage({ name: "kiln-worker-dev-1", tags: kiln("dev"), created: day(1) }),
      notKiln: fake.addImage({ name: "hand-made", tags: { "kiln:stack": "prod" }, created: day(1) }),
    };
    fake.addInstance({ imageId: a.terminatedOnly, state: "terminated" });
    fake.addInstance({ imageId: a.running, state: "running" });
    fake.addInstance({ imageId: a.stopped, state: "stopped" });
    fake.addLaunchTemplate("someone-else", [undefined]);
    // Pulumi adds a version per deploy and keeps them all; the group launches the default, the next deploy the latest.
    fake.addLaunchTemplate("workers", [a.inDefaultVersion, a.inOldVersion, undefined, a.second, a.newest]);
    fake.addLaunchTemplate("scratch", []);
    return a;
  }

  it("keeps the newest N complete, the current, the pending, what a template's latest or default version or a live instance uses; deletes the rest with their snapshots", async () => {
    const a = account();
    const doomed = [a.terminatedOnly, a.inOldVersion, a.failed, a.incompleteOld];
    const snapshotOf = (id: string) => fake.images.get(id)!.devices[0].snapshotId!;
    const doomedSnapshots = doomed.map(snapshotOf);
    const lines: string[] = [];
    const report = await pruneImages({ ec2: fake.ec2, stack: "prod", keep: 2, currentImageId: a.newest, incompleteAfterMinutes: 120, log: (l) => lines.push(l) });

    assert.deepEqual(report.pruned.map((p) => p.imageId), doomed, "oldest first; an older template version spares nothing");
    assert.deepEqual(new Set(fake.deregistered), new Set(doomed));
    for (const snap of doomedSnapshots) assert.equal(fake.snapshots.has(snap), false, `${snap} deleted`);
    const ops = fake.operations();
    assert.ok(ops.indexOf("DeregisterImage") < ops.indexOf("DeleteSnapshot"), "the image goes before its snapshot");

    const why = Object.fromEntries(report.spared.map((s) => [s.imageId, s.reasons.join("; ")]));
    assert.match(why[a.newest], /the image of this bake.*newest 2.*launch template workers \(lt-\w+\) version 5/);
    assert.match(why[a.second], /newest 2/);
    assert.match(why[a.stopped], /instance i-\w+ \(stopped\)/);
    assert.match(why[a.running], /instance i-\w+ \(running\)/);
    assert.match(why[a.inDefaultVersion], /workers .*version 1/);
    assert.match(why[a.pending], /pending/);
    assert.match(why[a.incompleteYoung], /incomplete but recent/);
    assert.equal(Object.keys(why).length, 7);
    assert.ok(fake.images.has(a.otherStack) && fake.images.has(a.notKiln), "other stacks' and hand-made images untouched");
    assert.ok(lines.some((l) => l.startsWith(`kept ${a.stopped}`)));
    assert.deepEqual(report.failed, []);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("never prunes the image just baked, however old", async () => {
    const a = account();
    const report = await pruneImages({ ec2: fake.ec2, stack: "prod", keep: 1, currentImageId: a.inOldVersion });
    assert.ok(report.spared.some((s) => s.imageId === a.inOldVersion && s.reasons.includes("the image of this bake")));
    assert.ok(fake.images.has(a.inOldVersion));
  });

  it("bounds the images by keep, however many deploys Pulumi kept versions of", async () => {
    const images = Array.from({ length: 9 }, (_, i) => fake.addImage({ name: `kiln-worker-prod-${i}`, tags: kiln("prod"), created: day(i + 1) }));
    // One template version per deploy, the default left at 1 (what a template never told otherwise does).
    fake.addLaunchTemplate("workers", images);
    const report = await pruneImages({ ec2: fake.ec2, stack: "prod", keep: 3, currentImageId: images[8] });
    const left = [...fake.images.values()].filter((i) => i.tags["kiln:stack"] === "prod" && i.state === "available").map((i) => i.id);
    assert.deepEqual(new Set(left), new Set([images[0], images[6], images[7], images[8]]), "the newest 3 and the default version's");
    assert.equal(report.pruned.length, 5);
  });

  it("in dry-run, says what would go and changes nothing", async () => {
    const a = account();
    const before = fake.images.size;
    const report = await pruneImages({ ec2: fake.ec2, stack: "prod", keep: 2, currentImageId: a.newest, incompleteAfterMinutes: 120, dryRun: true });
    assert.equal(report.dryRun, true);
    assert.deepEqual(new Set(report.pruned.map((p) => p.imageId)), new Set([a.terminatedOnly, a.inOldVersion, a.failed, a.incompleteOld]));
    assert.ok(report.pruned.every((p) => p.snapshotIds.length === 1));
    assert.deepEqual(fake.mutations(), []);
    assert.equal(fake.images.size, before);
  });

  it("goes on past an image that will not go, and reports it", async () => {
    const a = account();
    fake.failNext("DeregisterImage", ec2Error("UnauthorizedOperation", "no", 403));
    const report = await pruneImages({ ec2: fake.ec2, stack: "prod", keep: 2, currentImageId: a.newest });
    assert.equal(report.failed.length, 1);
    assert.equal(report.failed[0].error.code, "UnauthorizedOperation");
    assert.equal(report.failed[0].error.step, "prune");
    assert.equal(report.pruned.length, 2, "the other two still went");
  });

  it("fails before changing anything when it cannot see what uses the images", async () => {
    account();
    fake.failNext("DescribeLaunchTemplateVersions", ec2Error("UnauthorizedOperation", "no", 403), 1, 1);
    await rejectsWithStep(pruneImages({ ec2: fake.ec2, stack: "prod", keep: 2 }), "prune", "UnauthorizedOperation", /default versions of launch template workers/);
    fake.failNext("DescribeInstances", ec2Error("RequestLimitExceeded", "slow", 503));
    await rejectsWithStep(pruneImages({ ec2: fake.ec2, stack: "prod", keep: 2 }), "prune", "RequestLimitExceeded");
    assert.deepEqual(fake.mutations(), []);
  });

  it("does nothing for a stack with no images", async () => {
    const report = await pruneImages({ ec2: fake.ec2, stack: "empty", keep: 3 });
    assert.deepEqual(report, { dryRun: false, pruned: [], spared: [], failed: [] });
  });
});

describe("findImageByContentHash", () => {
  let fake: FakeEc2;
  beforeEach(() => (fake = new FakeEc2({ pageSize: 2 })));
  afterEach(() => fake.restore());

  it("returns the newest complete image of the stack with that hash, passing over what a killed bake left, or undefined", async () => {
    fake.addImage({ name: "a", tags: kiln("prod", "abc"), created: day(1) });
    const newest = fake.addImage({ name: "b", tags: kiln("prod", "abc"), created: day(3) });
    // Newer, available, same hash: but create-image was killed before IMDSv2, the snapshot tags or the complete tag.
    const unmarked = fake.addImage({ name: "g", tags: kiln("prod", "abc", false), created: day(7) });
    const noImds = fake.addImage({ name: "h", tags: kiln("prod", "abc"), created: day(8), imdsSupport: "" });
    const untaggedSnap = fake.addImage({ name: "i", tags: kiln("prod", "abc"), created: day(9) });
    fake.snapshots.get(fake.images.get(untaggedSnap)!.devices[0].snapshotId!)!.tags = {};
    fake.addImage({ name: "c", tags: kiln("prod", "abc"), created: day(2) });
    fake.addImage({ name: "d", tags: kiln("prod", "abc"), created: day(4), state: "pending" });
    fake.addImage({ name: "e", tags: kiln("dev", "abc"), created: day(5) });
    fake.addImage({ name: "f", tags: kiln("prod", "xyz"), created: day(6) });
    const skipped: string[] = [];
    assert.equal((await findImageByContentHash(fake.ec2, "prod", "abc", (id, why) => skipped.push(`${id}: ${why}`)))?.ImageId, newest);
    assert.equal(skipped.length, 3);
    assert.match(skipped[0], new RegExp(`${untaggedSnap}: its snapshots snap-\\w+ are not tagged`));
    assert.match(skipped[1], new RegExp(`${noImds}: it does not require IMDSv2`));
    assert.match(skipped[2], new RegExp(`${unmarked}: it has no kiln:complete tag`));
    assert.equal(await findImageByContentHash(fake.ec2, "prod", "nope"), undefined);
    assert.equal(await findImageByContentHash(fake.ec2, "staging", "abc"), undefined);
  });

  it("names what failed", async () => {
    fake.failNext("DescribeImages", ec2Error("AuthFailure", "AWS was not able to validate the provided access credentials", 401));
    await rejectsWithStep(findImageByContentHash(fake.ec2, "prod", "abc"), "reuse-image", "AuthFailure");
  });
});
