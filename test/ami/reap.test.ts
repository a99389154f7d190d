import { strict as assert } from "node:assert";
import { reapBuilders, ReapOptions } from "../../ami/reap";
import { ec2Error, FakeEc2, NO_LEFTOVERS } from "../support/fake-aws/ec2";
import { rejectsWithStep } from "./aws-step-helpers";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const ago = (minutes: number) => new Date(NOW - minutes * 60_000);
const builderTags = (buildId: string, stack = "prod") => ({ "kiln:builder": "true", "kiln:build-id": buildId, "kiln:stack": stack, ManagedBy: "kiln" });

describe("reap", () => {
  let fake: FakeEc2;
  beforeEach(() => (fake = new FakeEc2({ pageSize: 2, eniLingerAttempts: 2 })));
  afterEach(() => fake.restore());

  /** What killed bakes left, a bake still running, and things that are not kiln builders at all. */
  function account() {
    const build = (buildId: string, minutes: number, opts: { instance?: boolean; key?: boolean; group?: boolean; stack?: string } = {}) => {
      const tags = builderTags(buildId, opts.stack);
      const sg = opts.group === false ? undefined : fake.addSecurityGroup({ name: `kiln-builder-${buildId}`, tags });
      const key = opts.key === false ? undefined : fake.addKeyPair({ name: `kiln-builder-${buildId}`, tags, createTime: ago(minutes) });
      const instance =
        opts.instance === false
          ? undefined
          : fake.addInstance({ imageId: fake.al2023.x86_64, tags, launchTime: ago(minutes), securityGroupIds: sg ? [sg] : [], keyName: key?.name });
      return { sg, key: key?.name, instance };
    };
    return {
      old: build("old", 300),
      stoppedOld: build("stopped-old", 200),
      young: build("young", 10),
      keyOnly: build("key-only", 180, { instance: false }),
      groupOnly: build("group-only", 0, { instance: false, key: false }),
      otherStack: build("dev-old", 300, { stack: "dev" }),
      untaggedGroup: fake.addSecurityGroup({ name: "kiln-mystery", tags: { "kiln:builder": "true" } }),
      worker: fake.addInstance({ imageId: fake.al2023.x86_64, launchTime: ago(10_000), tags: { "kiln:stack": "prod" } }),
    };
  }

  const opts = (over: Partial<ReapOptions> = {}): ReapOptions => ({
    ec2: fake.ec2,
    olderThanMinutes: 120,
    stack: "prod",
    now: () => NOW,
    pollMs: 1,
    timeoutSeconds: 5,
    ...over,
  });

  it("terminates builders past the deadline and deletes their builds' key pairs and groups, retrying a busy group", async () => {
    const a = account();
    fake.instances.get(a.stoppedOld.instance!)!.state = "stopped";
    const lines: string[] = [];
    const report = await reapBuilders(opts({ log: (l) => lines.push(l) }));

    assert.deepEqual(report.instances.map((i) => [i.instanceId, i.buildId, i.state]).sort(), [
      [a.old.instance, "old", "running"],
      [a.stoppedOld.instance, "stopped-old", "stopped"],
    ].sort());
    assert.deepEqual(report.keyPairs.map((k) => k.name).sort(), [a.old.key, a.stoppedOld.key, a.keyOnly.key].sort());
    assert.deepEqual(report.securityGroups.map((g) => g.groupId).sort(), [a.old.sg, a.stoppedOld.sg, a.keyOnly.sg, a.groupOnly.sg].sort());
    assert.deepEqual(report.failed, []);

    for (const id of [a.old.instance!, a.stoppedOld.instance!]) assert.equal(fake.instances.get(id)!.state, "terminated");
    for (const sg of [a.old.sg!, a.stoppedOld.sg!, a.keyOnly.sg!, a.groupOnly.sg!]) assert.equal(fake.securityGroups.has(sg), false);
    assert.ok(
      fake.calls.some((c) => c.operation === "DeleteSecurityGroup" && c.error?.name === "DependencyViolation"),
      "a group's delete was retried while the terminated builder's interface lingered",
    );

    const left = fake.leftovers();
    assert.deepEqual(left.instances.sort(), [a.young.instance, a.otherStack.instance].sort(), "the running bake and the other stack's builder stay");
    assert.deepEqual(left.keyPairs.sort(), [a.young.key, a.otherStack.key].sort());
    assert.deepEqual(left.securityGroups.sort(), [a.young.sg, a.otherStack.sg, a.untaggedGroup].sort());
    assert.equal(fake.instances.get(a.worker)!.state, "running", "not a builder: untouched");

    const spared = Object.fromEntries(report.spared.map((s) => [s.resource, s.reason]));
    assert.match(spared[a.young.instance!], /within the 120-minute deadline/);
    assert.match(spared[a.young.sg!], /within/);
    assert.ok(lines.some((l) => l === `reaped ${a.old.instance}`));
  });

  it("without a stack, reaps every stack's old builders", async () => {
    const a = account();
    const report = await reapBuilders(opts({ stack: undefined }));
    assert.ok(report.instances.some((i) => i.instanceId === a.otherStack.instance && i.stack === "dev"));
    const left = fake.leftovers();
    assert.deepEqual(left.instances, [a.young.instance]);
    assert.match(report.spared.find((s) => s.resource === a.untaggedGroup)!.reason, /no kiln:build-id tag/);
  });

  it("in dry-run, says what would go and changes nothing", async () => {
    const a = account();
    const report = await reapBuilders(opts({ dryRun: true }));
    assert.equal(report.dryRun, true);
    assert.ok(report.instances.some((i) => i.instanceId === a.old.instance));
    assert.deepEqual(fake.mutations(), []);
  });

  it("goes on past what will not go, and reports it", async () => {
    const a = account();
    fake.failNext("TerminateInstances", ec2Error("UnauthorizedOperation", "no", 403));
    const report = await reapBuilders(opts({ timeoutSeconds: 0.05 }));
    const failed = Object.fromEntries(report.failed.map((f) => [f.resource, f.error.code]));
    const stuck = report.instances[0].instanceId;
    assert.equal(failed[stuck], "UnauthorizedOperation");
    const stuckSg = stuck === a.old.instance ? a.old.sg! : a.stoppedOld.sg!;
    assert.equal(failed[stuckSg], "DependencyViolation", "its group is still in use");
    assert.equal(report.failed.length, 2);
    assert.equal(fake.keyPairs.size, 2, "every key pair past the deadline went all the same");
  });

  it("fails before changing anything when it cannot list builders", async () => {
    account();
    fake.failNext("DescribeKeyPairs", ec2Error("UnauthorizedOperation", "no", 403));
    await rejectsWithStep(reapBuilders(opts()), "reap", "UnauthorizedOperation", /key pairs/);
    assert.deepEqual(fake.mutations(), []);
  });

  it("finds nothing in a clean account", async () => {
    const report = await reapBuilders(opts());
    assert.deepEqual(report, { dryRun: false, instances: [], keyPairs: [], securityGroups: [], images: [], profiles: [], spared: [], failed: [] });
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });
});
