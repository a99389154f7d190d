import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bakeSettings } from "../../ami/settings";
import { linkProdApp } from "../support/bake-on-fake";
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
      assert.throws(() => bakeSettings(dir, "prod"), /kiln:bake\.keepImages is not a setting of kiln:bake: did you mean keep\?/);
      assert.throws(() => bakeSettings(dir, "staging"), /staging/);
      fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), text.replace("appDir: worker/examples/file-processor", "appDir: file-processor"));
      assert.throws(() => bakeSettings(dir, "prod"), /kiln:bake\.appDir "file-processor" is not a directory next to the stack file/);
      fs.mkdirSync(path.join(dir, "file-processor"));
      assert.equal(bakeSettings(dir, "prod").appDir, path.join(dir, "file-processor"));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("the deadlines and distribution settings", () => {
    let dir: string;
    let text: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-bake-settings-"));
      text = fs.readFileSync(path.join(REPO, "Pulumi.prod.yaml"), "utf8");
      linkProdApp(dir);
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
    const withBake = (lines: string) => {
      fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), text.replace("keep: 3", `keep: 3\n${lines.split("\n").map((l) => `    ${l}`).join("\n")}`));
      return () => bakeSettings(dir, "prod");
    };

    it("take deadlines from kiln:bake, and flags over them", () => {
      const s = withBake("sshTimeout: 900\nimageTimeout: 7200\ninstanceTimeout: 300\nrequestTimeout: 10\nbuilderLifetime: 240\nsshInterface: private_ip")();
      assert.deepEqual([s.sshTimeout, s.imageTimeout, s.instanceTimeout, s.requestTimeout, s.builderLifetimeMinutes, s.sshInterface], [900, 7200, 300, 10, 240, "private_ip"]);
      const f = bakeSettings(dir, "prod", { sshTimeout: 60, sshInterface: "public_ip" });
      assert.deepEqual([f.sshTimeout, f.sshInterface], [60, "public_ip"]);
    });

    it("take a customer managed key, copy regions with their keys, and accounts to share with", () => {
      const s = withBake("kmsKeyId: alias/kiln-ami\ncopyRegions: [eu-west-1]\nregionKmsKeyIds:\n  eu-west-1: arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\nshareAccounts: ['444455556666']")();
      assert.deepEqual([s.kmsKeyId, s.copyRegions, s.shareAccounts], ["alias/kiln-ami", ["eu-west-1"], ["444455556666"]]);
    });

    const refused: [string, RegExp][] = [
      ["sshInterface: ssm", /kiln:bake\.sshInterface must be public_ip, private_ip or session_manager/],
      ["sshTimeout: 5", /kiln:bake\.sshTimeout must be a whole number of seconds from 10 to 7200/],
      ["kmsKeyId: my-key", /kiln:bake\.kmsKeyId must be a KMS key id, alias\/name, key ARN or alias ARN/],
      ["copyRegions: [ap-northeast-1]", /kiln:bake\.copyRegions names ap-northeast-1, the region the image is baked in/],
      ["copyRegions: [eu-west-1, eu-west-1]", /kiln:bake\.copyRegions names eu-west-1 twice/],
      ["kmsKeyId: alias/k\ncopyRegions: [eu-west-1, us-east-1]\nregionKmsKeyIds: {eu-west-1: alias/k}", /kiln:bake\.regionKmsKeyIds needs a KMS key for us-east-1/],
      ["regionKmsKeyIds: {eu-west-1: alias/k}\ncopyRegions: [eu-west-1]", /kiln:bake\.regionKmsKeyIds needs kmsKeyId/],
      ["shareAccounts: ['444455556666']", /kiln:bake\.shareAccounts needs kmsKeyId: an image encrypted with the AWS managed EBS key cannot be shared/],
      ["kmsKeyId: alias/k\nshareAccounts: ['4444']", /kiln:bake\.shareAccounts.* must be 12-digit AWS account ids/],
    ];
    for (const [lines, message] of refused) {
      it(`refuse ${lines.replace(/\n/g, "; ")}`, () => assert.throws(withBake(lines), message));
    }
  });
});
