import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { DeployedStack, deployedStackSuite, STACK } from "./support/deployed-stack";

type Check = { name: string; status: string; detail: string };

describe("kiln doctor against a deployed stack (moto; EC2 quotas and refresh faked)", function () {
  this.timeout(120_000);
  let stack!: DeployedStack;
  deployedStackSuite((s) => (stack = s));

  const doctor = async () => {
    const r = await stack.run(["doctor", "--json"]);
    const checks = new Map<string, Check>((r.json().checks as Check[]).map((c) => [c.name, c]));
    return { r, checks };
  };

  it("a healthy stack: every check ok, exit 0, and a report with status in it", async () => {
    const { r, checks } = await doctor();
    assert.equal(r.code, 0, r.out + r.err);
    for (const name of ["intake", "dead letters", "scaling activities", "vCPU quota", "environment drift", "image", "worker errors"]) {
      assert.equal(checks.get(name)?.status, "ok", `${name}: ${checks.get(name)?.detail}`);
    }
    assert.match(checks.get("vCPU quota")!.detail, /^kiln:maxSize 5 × 2 vCPUs \(t3\.medium\) = 10 vCPUs; quota L-1216C47A \(On-Demand standard\) is 32/);
    assert.match(checks.get("image")!.detail, /built on the newest base image/);
    const human = await stack.run(["doctor"]);
    assert.match(human.out, /^ {2}queue +visible 0/m, "status is part of the report");
    assert.match(human.out, /^nothing failed, 0 warnings/m);
  });

  it("finds drift, a quota too small, failed scaling, errors and a newer base image; exit 3", async () => {
    // A value changed in the console: its version moves, the template's digest does not.
    await stack.ssm.send(new PutParameterCommand({ Name: `${stack.names.ssmPrefix}PDF_DPI`, Value: "300", Type: "String", Overwrite: true }));
    stack.quotas.values["L-1216C47A"] = 8;
    stack.proxy.serve("autoscaling", "DescribeScalingActivities", () => ({
      body:
        `<Activities><member><ActivityId>a1</ActivityId><AutoScalingGroupName>${stack.names.groupName}</AutoScalingGroupName>` +
        `<Cause>At ${new Date().toISOString()} an instance was started in response to a difference between desired and actual capacity</Cause>` +
        `<StartTime>${new Date(Date.now() - 600_000).toISOString()}</StartTime><StatusCode>Failed</StatusCode>` +
        `<StatusMessage>You have requested more vCPU capacity than your current vCPU limit of 8 allows.</StatusMessage>` +
        `<Description>Launching a new EC2 instance. Status Reason: vCPU limit</Description><Progress>100</Progress></member></Activities>`,
    }));
    await stack.putLogLines("i-0err", [{ level: "error", msg: "SQS call failed", operation: "delete", err: "AccessDenied" }]);
    // A newer base image: the stack bakes from its own SSM parameter, which now names another image.
    const other = (await stack.ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }))).Images!.find((i) => i.Architecture === "x86_64")!.ImageId!;
    await stack.ssm.send(new PutParameterCommand({ Name: "/acme/base-image", Value: other, Type: "String" }));
    const file = path.join(stack.dir, `Pulumi.${STACK}.yaml`);
    const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
    (doc.getIn(["config", "kiln:bake"]) as YAML.YAMLMap).set("baseImage", "/acme/base-image");
    fs.writeFileSync(file, doc.toString());

    const { r, checks } = await doctor();
    const human = await stack.run(["doctor"]);
    stack.proxy.unserve("autoscaling", "DescribeScalingActivities");
    assert.equal(r.code, 3, r.out);
    assert.equal(checks.get("environment drift")!.status, "fail");
    assert.match(checks.get("environment drift")!.detail, /the parameters under \/kiln\/prod\/worker\/ changed since launch template version 1 was deployed/);
    assert.equal(checks.get("vCPU quota")!.status, "fail");
    assert.match(checks.get("vCPU quota")!.detail, /10 vCPUs; quota L-1216C47A .* is 8, .*: the group can never reach its maximum/);
    assert.equal(checks.get("scaling activities")!.status, "fail");
    assert.match(checks.get("scaling activities")!.detail, /vCPU limit of 8/);
    assert.equal(checks.get("worker errors")!.status, "warn");
    assert.equal(checks.get("image")!.status, "warn");
    assert.match(checks.get("image")!.detail, new RegExp(`a newer base image exists: /acme/base-image is ${other}`));
    assert.match(human.out, /^ {2}FAIL {2}environment drift/m);
    assert.match(human.out, /^recent errors\n {2}\S+ \S+ {2}error {2}i-0err {2}SQS call failed {2}err="AccessDenied"$/m);
    assert.match(human.out, /^3 failed, 2 warnings/m);
  });

  it("a check it cannot make is unknown, not a crash", async () => {
    stack.proxy.failNext("GetServiceQuota", "reset", Infinity);
    const { r, checks } = await doctor();
    stack.proxy.clearFaults();
    assert.equal(checks.get("vCPU quota")!.status, "unknown");
    assert.ok(r.code === 3, "the other failures still count");
  });
});
