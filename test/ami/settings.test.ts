import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bakeSettings } from "../../ami/settings";
import { REPO } from "../support/pulumi-harness";

describe("bake settings", () => {
  it("come from the stack's kiln:bake, falling back to the fleet's own settings", () => {
    const prod = bakeSettings(REPO, "prod");
    assert.equal(prod.region, "ap-northeast-1");
    assert.equal(prod.subnetId, "subnet-0c77d88e99f00a11b", "kiln:bake.subnetId");
    assert.equal(prod.sshCidr, "203.0.113.0/24");
    assert.equal(prod.instanceType, "t3.medium", "the workers' type");
    assert.equal(prod.keep, 3);
    assert.equal(prod.tags.Environment, "production");

    const dev = bakeSettings(REPO, "dev");
    assert.equal(dev.subnetId, "subnet-0123456789abcdef0", "no kiln:bake: the first worker subnet");
    assert.equal(dev.baseImage, "", "resolved later to Amazon Linux 2023 for the architecture");
    assert.equal(dev.sshUser, "ec2-user");
  });

  it("take flags over the stack file", () => {
    const s = bakeSettings(REPO, "prod", { instanceType: "c7g.large", keep: 5, sshCidr: "198.51.100.7/32" });
    assert.deepEqual([s.instanceType, s.keep, s.sshCidr], ["c7g.large", 5, "198.51.100.7/32"]);
  });

  it("reject a kiln:bake that names an unknown setting or a bad value, naming the key", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-bake-settings-"));
    try {
      const text = fs.readFileSync(path.join(REPO, "Pulumi.prod.yaml"), "utf8");
      fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), text.replace("sshCidr: 203.0.113.0/24", "sshCidr: anywhere"));
      assert.throws(() => bakeSettings(dir, "prod"), /kiln:bake\.sshCidr must be an IPv4 CIDR such as 203\.0\.113\.0\/24 \(got/);
      fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), text.replace("keep: 3", "keepImages: 3"));
      assert.throws(() => bakeSettings(dir, "prod"), /kiln:bake .*keepImages/);
      assert.throws(() => bakeSettings(dir, "staging"), /staging/);
      fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), text.replace("appDir: worker/examples/file-processor", "appDir: file-processor"));
      assert.throws(() => bakeSettings(dir, "prod"), /kiln:bake\.appDir "file-processor" is not a directory next to the stack file/);
      fs.mkdirSync(path.join(dir, "file-processor"));
      assert.equal(bakeSettings(dir, "prod").appDir, path.join(dir, "file-processor"));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
