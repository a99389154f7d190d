import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { renderUserData } from "../../infra/user-data";
import { runStack } from "../support/pulumi-harness";
import { TestAccount } from "../support/moto-network";

/** Runs the real cloud-init schema validator on a file. */
function cloudInitSchema(text: string): { ok: boolean; output: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-userdata-"));
  try {
    const file = path.join(dir, "user-data");
    fs.writeFileSync(file, text);
    const r = spawnSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8" });
    return { ok: r.status === 0, output: r.stdout + r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("user data", () => {
  before(function () {
    try {
      execFileSync("cloud-init", ["--version"], { stdio: "ignore" });
    } catch {
      throw new Error("cloud-init is not installed: .ci/run installs it (apt-get install cloud-init)");
    }
  });

  it("passes cloud-init's schema, as the launch template of each stack carries it", async () => {
    const account = await TestAccount.start();
    try {
      for (const stack of ["prod", "dev"]) {
        const run = await runStack(stack, account.stackConfig(stack), account.fakeAws());
        const text = Buffer.from(run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs.userData, "base64").toString();
        const result = cloudInitSchema(text);
        assert.ok(result.ok, `${stack}: ${result.output}`);
        assert.match(result.output, /Valid cloud-config/);
      }
    } finally {
      await account.stop();
    }
  });

  it("is checked by a validator that does reject a broken config", () => {
    const broken = renderUserData({ ssmPrefix: "/kiln/x/worker/", region: "ap-northeast-1", envDigest: "d" }).replace(
      "permissions: \"0644\"",
      "permissions: [0644]",
    );
    assert.notEqual(broken, renderUserData({ ssmPrefix: "/kiln/x/worker/", region: "ap-northeast-1", envDigest: "d" }));
    assert.equal(cloudInitSchema(broken).ok, false);
  });

  it("writes the instance's pointers to /etc/kiln/instance.env, readable by the env unit", () => {
    const text = renderUserData({ ssmPrefix: "/kiln/prod/worker/", region: "ap-northeast-1", envDigest: "abc" });
    assert.match(text, /path: \/etc\/kiln\/instance\.env/);
    assert.match(text, /KILN_SSM_PREFIX=\/kiln\/prod\/worker\/\n\s+AWS_REGION=ap-northeast-1\n\s+KILN_ENV_DIGEST=abc/);
  });
});
