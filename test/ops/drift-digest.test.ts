import { strict as assert } from "node:assert";
import { digestInUserData, envDigest } from "../../ops/aws/drift";
import { TestAccount } from "../support/moto-network";
import { runStack, StackRun } from "../support/pulumi-harness";

/** What `kiln doctor` compares: its digest of live parameters must be the one the program deploys. */
describe("kiln doctor's environment digest is the stack's own (infra/worker-environment.ts)", function () {
  this.timeout(60_000);
  let account: TestAccount;
  before(async () => (account = await TestAccount.start()));
  after(async () => account?.stop());

  const parameters = (run: StackRun) =>
    run.ofType("aws:ssm/parameter:Parameter").map((p) => ({ name: String(p.inputs.name), type: String(p.inputs.type), version: Number(p.state.version) }));
  const deployedDigest = (run: StackRun) =>
    digestInUserData(Buffer.from(run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs.userData, "base64").toString("utf8"));

  it("matches the launch template's KILN_ENV_DIGEST, secrets and changed versions included", async () => {
    const file = account.stackConfig("prod");
    file.values["kiln:secretEnv"] = JSON.stringify({ OPENSEARCH_PASSWORD: "p", API_TOKEN: "t" });
    file.secretKeys = [...file.secretKeys, "kiln:secretEnv"];
    const aws = account.fakeAws();
    const first = await runStack("prod", file, aws);
    const changed = structuredClone(file);
    changed.values["kiln:env"] = JSON.stringify({ ...JSON.parse(file.values["kiln:env"]), PDF_DPI: 72 });
    const second = await runStack("prod", changed, aws);

    for (const run of [first, second]) {
      const params = parameters(run);
      assert.ok(params.some((p) => p.type === "SecureString"), "secrets are in the digest too");
      assert.equal(envDigest("/kiln/prod/worker/", params), deployedDigest(run));
    }
    assert.ok(parameters(second).some((p) => p.name.endsWith("PDF_DPI") && p.version === 2));
    assert.notEqual(deployedDigest(first), deployedDigest(second));
    // Shuffled as SSM may list them: the digest does not depend on the listing's order.
    assert.equal(envDigest("/kiln/prod/worker/", parameters(second).reverse()), deployedDigest(second));
  });
});
