import { strict as assert } from "node:assert";
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { readStackFile } from "../../infra/stack-file";
import { DeployedStack, deployedStackSuite, STACK } from "./support/deployed-stack";

describe("kiln scale, pause, resume and rollout against a deployed stack (moto, instance refresh faked)", function () {
  this.timeout(120_000);
  let stack!: DeployedStack;
  deployedStackSuite((s) => (stack = s));

  const group = async () => (await stack.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [stack.names.groupName] }))).AutoScalingGroups![0];

  it("scale sets the desired count within the group's bounds and says what the rule will do", async () => {
    const r = await stack.run(["scale", "--desired", "4"]);
    assert.equal(r.code, 0, r.err);
    assert.equal((await group()).DesiredCapacity, 4);
    assert.match(r.out, /desired 2 → 4\nthe backlog rule asks for 1 \(0 visible, 3000 per instance\) and moves it there at its next evaluation/);
    const above = await stack.run(["scale", "--desired", "9"]);
    assert.equal(above.code, 2);
    assert.equal(above.err, "kiln: --desired 9 is outside the group's 1 to 5 instances: change kiln:minSize or kiln:maxSize and run pulumi up to go beyond\n");
    assert.equal((await group()).DesiredCapacity, 4, "nothing changed");
    assert.equal((await stack.run(["scale"])).code, 2);
  });

  it("pause: records, suspends the backlog policies, drains to 0, says what pulumi up does; resume puts it back", async () => {
    const r = await stack.run(["pause"]);
    assert.equal(r.code, 0, r.err);
    let g = await group();
    assert.deepEqual([g.MinSize, g.DesiredCapacity], [0, 0]);
    assert.deepEqual(g.SuspendedProcesses!.map((p) => p.ProcessName).sort(), ["AlarmNotification", "ScheduledActions"]);
    const tag = JSON.parse(g.Tags!.find((t) => t.Key === "kiln:paused")!.Value!);
    assert.deepEqual([tag.min, tag.desired], [1, 4]);
    assert.match(r.out, /paused: desired 4 → 0, minimum 1 → 0/);
    assert.match(r.out, /a `pulumi up --stack prod` that refreshes the group \(--refresh\) or changes it puts minSize back to 1 and resumes the processes/);

    assert.match((await stack.run(["pause"])).out, /already paused since /);
    const scale = await stack.run(["scale", "--desired", "3"]);
    assert.equal(scale.code, 2);
    assert.match(scale.err, /is paused: resume it first/);
    assert.match((await stack.run(["status"])).out, /^ {2}paused +since .*AlarmNotification, ScheduledActions suspended \(kiln resume\)$/m);

    const back = await stack.run(["resume", "--json"]);
    assert.equal(back.code, 0, back.err);
    assert.deepEqual([back.json().min, back.json().desired], [1, 4]);
    g = await group();
    assert.deepEqual([g.MinSize, g.DesiredCapacity], [1, 4]);
    assert.deepEqual(g.SuspendedProcesses, []);
    assert.equal(g.Tags!.some((t) => t.Key === "kiln:paused"), false);
    assert.match((await stack.run(["resume"])).out, /the group was not paused/);
  });

  it("rollout status, cancel and rollback of an instance refresh in progress", async () => {
    const refresh = stack.refresh.add({ group: stack.names.groupName, status: "InProgress", percentage: 60, instancesToUpdate: 2 });
    const s = await stack.run(["rollout", "status"]);
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /^ {2}refresh +InProgress 60%, 2 to update, started /m);
    assert.match(s.out, /^ {2}instances +4 of 4 on launch template version 1 \(the newest\)$/m);
    assert.match(s.out, new RegExp(`^  image +${stack.imageId} \\(kiln:amiId\\)$`, "m"));

    const rolled = await stack.run(["rollout", "rollback"]);
    assert.equal(rolled.code, 0, rolled.err);
    assert.equal(refresh.status, "RollbackInProgress");
    assert.equal(readStackFile(stack.dir, STACK).raw.values["kiln:amiId"], stack.imageId, "the stack file is left alone");

    const second = stack.refresh.add({ group: stack.names.groupName, status: "InProgress", percentage: 10, instancesToUpdate: 4 });
    refresh.status = "RollbackSuccessful";
    const c = await stack.run(["rollout", "cancel"]);
    assert.equal(c.code, 0, c.err);
    assert.equal(second.status, "Cancelling");
    second.status = "Cancelled";
    assert.match((await stack.run(["rollout", "cancel"])).out, /no instance refresh in progress \(the latest is Cancelled\): nothing to cancel/);
  });

  it("rollout rollback with no refresh running puts the stack's previous image in the stack file", async () => {
    const r = await stack.run(["rollout", "rollback", "--json"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual([r.json().from, r.json().to], [stack.imageId, stack.previousImageId]);
    assert.equal(readStackFile(stack.dir, STACK).raw.values["kiln:amiId"], stack.previousImageId);
    const s = await stack.run(["rollout", "status"]);
    assert.match(s.out, new RegExp(`Pulumi\\.prod\\.yaml has kiln:amiId ${stack.previousImageId}: run pulumi up --stack prod to roll onto it`));
    const none = await stack.run(["rollout", "rollback"]);
    assert.equal(none.code, 2, "nothing older than the oldest");
    assert.match(none.err, /no image of stack prod older than kiln:amiId .* is left/);
  });
});
