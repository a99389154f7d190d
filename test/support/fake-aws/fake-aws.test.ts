import { strict as assert } from "node:assert";
import {
  CompleteLifecycleActionCommand,
  CompleteLifecycleActionCommandInput,
  DescribeAutoScalingGroupsCommand,
} from "@aws-sdk/client-auto-scaling";
import { GetParametersByPathCommand, GetParametersByPathCommandOutput, SSMClient } from "@aws-sdk/client-ssm";
import { InstanceMetadata } from "../../../worker/lifecycle";
import { FakeAws, FakeImds, awsError } from ".";

describe("the fake AWS the worker's boot commands are tested against", () => {
  let fake: FakeAws;
  beforeEach(() => (fake = new FakeAws({ ssmPageSize: 2 })));
  afterEach(() => fake.restore());

  async function readAll(input: { Path: string; Recursive?: boolean; WithDecryption?: boolean }) {
    const pages: GetParametersByPathCommandOutput[] = [];
    let NextToken: string | undefined;
    do {
      const page = await fake.ssm.send(new GetParametersByPathCommand({ ...input, NextToken }));
      pages.push(page);
      NextToken = page.NextToken;
    } while (NextToken);
    return { pages, values: Object.fromEntries(pages.flatMap((p) => p.Parameters ?? []).map((p) => [p.Name, p.Value])) };
  }

  it("pages GetParametersByPath by its small page size, following the hierarchy", async () => {
    fake.parameters.putAll("/app/prod/", { A: "1", B: "2", C: "3", D: "4", E: "5" });
    fake.parameters.put("/app/prod/deep/F", "6");
    fake.parameters.put("/app/production/G", "7");
    const flat = await readAll({ Path: "/app/prod" });
    assert.equal(flat.pages.length, 3);
    assert.deepEqual(Object.keys(flat.values), ["/app/prod/A", "/app/prod/B", "/app/prod/C", "/app/prod/D", "/app/prod/E"]);
    const deep = await readAll({ Path: "/app/prod/", Recursive: true });
    assert.equal(deep.values["/app/prod/deep/F"], "6");
    assert.equal(deep.values["/app/production/G"], undefined);
  });

  it("returns a SecureString's plaintext only with WithDecryption", async () => {
    fake.parameters.put("/app/prod/SECRET", "hunter2", "SecureString");
    assert.notEqual((await readAll({ Path: "/app/prod" })).values["/app/prod/SECRET"], "hunter2");
    assert.equal((await readAll({ Path: "/app/prod", WithDecryption: true })).values["/app/prod/SECRET"], "hunter2");
  });

  it("rejects what SSM rejects: a relative path, MaxResults above 10, a forged token", async () => {
    await assert.rejects(fake.ssm.send(new GetParametersByPathCommand({ Path: "app" })), { name: "ValidationException" });
    await assert.rejects(fake.ssm.send(new GetParametersByPathCommand({ Path: "/app", MaxResults: 11 })), { name: "ValidationException" });
    await assert.rejects(fake.ssm.send(new GetParametersByPathCommand({ Path: "/app", NextToken: "nope" })), { name: "ValidationException" });
  });

  it("fails a call on demand, a given number of times, after letting some through, and records every call", async () => {
    fake.parameters.put("/app/X", "1");
    fake.failNext("GetParametersByPath", awsError("ssm", "ThrottlingException", "Rate exceeded"), 2, 1);
    const send = () => fake.ssm.send(new GetParametersByPathCommand({ Path: "/app" }));
    await send();
    await assert.rejects(send(), { name: "ThrottlingException", $fault: "client" });
    await assert.rejects(send(), { name: "ThrottlingException" });
    await send();
    assert.deepEqual(fake.calls.map((c) => [c.operation, c.error?.name]), [
      ["GetParametersByPath", undefined],
      ["GetParametersByPath", "ThrottlingException"],
      ["GetParametersByPath", "ThrottlingException"],
      ["GetParametersByPath", undefined],
    ]);
  });

  it("fails loudly on an operation it does not serve, and takes new ones through handle()", async () => {
    await assert.rejects(fake.autoscaling.send(new DescribeAutoScalingGroupsCommand({})), /no handler/);
    const completed: CompleteLifecycleActionCommandInput[] = [];
    fake.handle("autoscaling", CompleteLifecycleActionCommand, (input) => {
      completed.push(input);
      return {};
    });
    fake.failNext("CompleteLifecycleAction", awsError("autoscaling", "ValidationError", "No active Lifecycle Action found"));
    const complete = () =>
      fake.autoscaling.send(new CompleteLifecycleActionCommand({ AutoScalingGroupName: "g", LifecycleHookName: "kiln-drain", LifecycleActionResult: "CONTINUE" }));
    await assert.rejects(complete(), { name: "ValidationError" });
    await complete();
    assert.equal(completed.length, 1);
    assert.equal(fake.inputs("CompleteLifecycleAction").length, 2);
  });

  it("leaves every other client in the process alone", async () => {
    const other = new SSMClient({ region: "ap-northeast-1", endpoint: "http://127.0.0.1:9", credentials: { accessKeyId: "a", secretAccessKey: "b" }, maxAttempts: 1 });
    try {
      await assert.rejects(other.send(new GetParametersByPathCommand({ Path: "/app" })), (e: Error) => !/no handler/.test(e.message));
      assert.equal(fake.calls.length, 0);
    } finally {
      other.destroy();
    }
  });
});

describe("the IMDSv2 stand-in", () => {
  let imds: FakeImds;
  beforeEach(async () => (imds = await FakeImds.start({ instanceId: "i-0fake", targetLifecycleState: "InService" })));
  afterEach(async () => imds.stop());

  it("listens on 127.0.0.1 only", () => {
    assert.match(imds.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("answers metadata only with a session token, as an instance requiring IMDSv2 does", async () => {
    const noToken = await fetch(`${imds.endpoint}/latest/meta-data/instance-id`);
    assert.equal(noToken.status, 401);
    const noTtl = await fetch(`${imds.endpoint}/latest/api/token`, { method: "PUT" });
    assert.equal(noTtl.status, 400);
    const client = new InstanceMetadata(imds.endpoint);
    assert.equal(await client.get("instance-id"), "i-0fake");
    assert.equal(await client.get("autoscaling/target-lifecycle-state"), "InService");
    imds.metadata.set("autoscaling/target-lifecycle-state", "Terminated");
    assert.equal(await client.get("autoscaling/target-lifecycle-state"), "Terminated");
    await assert.rejects(client.get("no/such/path"), /404/);
  });

  it("can be made briefly unavailable", async () => {
    imds.failNext(1);
    await assert.rejects(new InstanceMetadata(imds.endpoint).get("instance-id"), /500/);
    assert.equal(await new InstanceMetadata(imds.endpoint).get("instance-id"), "i-0fake");
  });
});
