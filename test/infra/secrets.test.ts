import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { runStack, StackRun } from "../support/pulumi-harness";
import { TestAccount } from "../support/moto-network";

const SECRET = "s3cr3t-OpenSearch-pa55word";
const TOKEN = "tok-9f8e7d6c5b4a";

describe("secrets from kiln:secretEnv", () => {
  let run: StackRun;
  let account: TestAccount;
  const paramName = "/kiln/prod/worker/OPENSEARCH_PASSWORD";

  before(async () => {
    account = await TestAccount.start();
    const cfg = account.stackConfig("prod");
    cfg.values["kiln:secretEnv"] = JSON.stringify({ OPENSEARCH_PASSWORD: SECRET, API_TOKEN: TOKEN });
    cfg.secretKeys.push("kiln:secretEnv");
    run = await runStack("prod", cfg, account.fakeAws());
  });
  after(async () => {
    await account?.stop();
  });

  it("become SecureString parameters holding the value, marked secret", () => {
    const p = run.ofType("aws:ssm/parameter:Parameter").find((r) => r.inputs.name === paramName)!;
    assert.equal(p.inputs.type, "SecureString");
    assert.equal(p.inputs.value, SECRET);
    assert.ok(p.secretPaths.includes("value"), "the value reached the engine as a secret");
    assert.equal(p.inputs.keyId, run.one("aws:kms/key:Key").state.arn, "under the stack's own key, not aws/ssm");
  });

  it("appear in no other resource input: not in user data, tags, names or policies", () => {
    for (const r of run.resources) {
      const text = JSON.stringify(r.inputs) + Buffer.from(r.inputs.userData ?? "", "base64").toString();
      const holds = text.includes(SECRET) || text.includes(TOKEN);
      const isItsParameter =
        r.type === "aws:ssm/parameter:Parameter" && r.inputs.type === "SecureString" && [SECRET, TOKEN].includes(r.inputs.value);
      assert.ok(!holds || isItsParameter, `${r.type} ${r.name} does not hold a secret`);
    }
    const secure = run.ofType("aws:ssm/parameter:Parameter").filter((r) => r.inputs.type === "SecureString");
    assert.equal(secure.length, 2);
  });

  it("stay secret as Outputs, and never reach the stack outputs", async () => {
    const param = run.constructed.find((c) => c.type === "aws:ssm/parameter:Parameter" && c.props.name === paramName)!;
    assert.equal(await pulumi.isSecret((param.resource as aws.ssm.Parameter).value), true);
    assert.equal(await pulumi.isSecret(pulumi.output(param.props.value)), true);
    assert.ok(!JSON.stringify(run.outputs).includes(SECRET));
    for (const [name, out] of Object.entries(run.exports)) {
      if (pulumi.Output.isInstance(out)) assert.equal(await pulumi.isSecret(out), false, `${name} is a plain output`);
    }
  });
});
