import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import { contentHash } from "../../ami/content-hash";
import { listPayloadFiles } from "../../ami/payload";
import { recordAmiId } from "../../ami/publish";
import { readStackFile } from "../../infra/stack-file";
import { REPO } from "../support/pulumi-harness";

describe("publishing a baked image", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-publish-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes kiln:amiId into the stack file, keeping comments, order and secure: values untouched", () => {
    // The committed prod stack, with a secret as `pulumi config set --secret` leaves it.
    const original =
      fs.readFileSync(path.join(REPO, "Pulumi.prod.yaml"), "utf8") +
      "  kiln:secretEnv:\n    OPENSEARCH_PASSWORD:\n      secure: v1:T0p5ecretCiphertext==\n";
    fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), original);

    const { previous } = recordAmiId(dir, "prod", "ami-0fedcba9876543210");
    const written = fs.readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8");

    assert.equal(previous, "ami-0a1b2c3d4e5f60718");
    // Exactly one line changed: the AMI id.
    const before = original.split("\n");
    const after = written.split("\n");
    assert.equal(after.length, before.length);
    const changed = after.filter((line, i) => line !== before[i]);
    assert.deepEqual(changed, ["  kiln:amiId: ami-0fedcba9876543210"]);
    assert.match(written, /# Recorded by `npm run bake-ami -- --stack prod`\./);
    assert.match(written, /secure: v1:T0p5ecretCiphertext==/);
    // And Pulumi still reads it as before, the secret still a secret.
    const { raw } = readStackFile(dir, "prod");
    assert.equal(raw.values["kiln:amiId"], "ami-0fedcba9876543210");
    assert.ok(raw.secretKeys.has("kiln:secretEnv"));
  });

  it("sets an empty kiln:amiId in place (the dev stack before its first bake)", () => {
    fs.copyFileSync(path.join(REPO, "Pulumi.dev.yaml"), path.join(dir, "Pulumi.dev.yaml"));
    const { previous } = recordAmiId(dir, "dev", "ami-0123456789abcdef0");
    assert.equal(previous, undefined);
    const parsed = YAML.parse(fs.readFileSync(path.join(dir, "Pulumi.dev.yaml"), "utf8"));
    assert.equal(parsed.config["kiln:amiId"], "ami-0123456789abcdef0");
    assert.equal(Object.keys(parsed.config).indexOf("kiln:amiId"), 1, "kept where it was");
  });

  it("refuses what is not an AMI id, and a stack file that does not exist, changing nothing", () => {
    fs.copyFileSync(path.join(REPO, "Pulumi.dev.yaml"), path.join(dir, "Pulumi.dev.yaml"));
    const before = fs.readFileSync(path.join(dir, "Pulumi.dev.yaml"), "utf8");
    assert.throws(() => recordAmiId(dir, "dev", "snap-0123"), /refusing to record "snap-0123": not an AMI id/);
    assert.throws(() => recordAmiId(dir, "staging", "ami-0123456789abcdef0"), /ENOENT|Pulumi\.staging\.yaml/);
    assert.equal(fs.readFileSync(path.join(dir, "Pulumi.dev.yaml"), "utf8"), before);
    assert.deepEqual(fs.readdirSync(dir), ["Pulumi.dev.yaml"], "no temporary file left");
  });
});

describe("the content hash that decides whether to bake", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-hash-"));
    fs.mkdirSync(path.join(dir, "systemd"));
    fs.writeFileSync(path.join(dir, "kiln-worker.js"), "console.log(1)\n");
    fs.writeFileSync(path.join(dir, "systemd", "kiln-worker.service"), "[Service]\n");
    fs.writeFileSync(path.join(dir, "10-user.sh"), "#!/bin/sh\n", { mode: 0o755 });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const inputs = { baseImage: "ami-0123456789abcdef0", rootVolumeSize: 30 };

  it("is stable for the same payload and inputs, whatever order files were written in", () => {
    const a = contentHash(dir, inputs);
    assert.equal(contentHash(dir, { rootVolumeSize: 30, baseImage: "ami-0123456789abcdef0" }), a);
    assert.deepEqual(listPayloadFiles(dir), ["10-user.sh", "kiln-worker.js", "systemd/kiln-worker.service"]);
    assert.match(a, /^[0-9a-f]{64}$/);
  });

  it("changes with a file's content, a file's mode, a new file, the base image or a setting", () => {
    const base = contentHash(dir, inputs);
    const seen = new Set([base]);
    const variants: [string, () => string][] = [
      ["content", () => (fs.writeFileSync(path.join(dir, "kiln-worker.js"), "console.log(2)\n"), contentHash(dir, inputs))],
      ["mode", () => (fs.chmodSync(path.join(dir, "10-user.sh"), 0o644), contentHash(dir, inputs))],
      ["new file", () => (fs.writeFileSync(path.join(dir, "20-dirs.sh"), ""), contentHash(dir, inputs))],
      ["base image", () => contentHash(dir, { ...inputs, baseImage: "ami-0fedcba9876543210" })],
      ["setting", () => contentHash(dir, { ...inputs, rootVolumeSize: 40 })],
    ];
    for (const [what, next] of variants) {
      const h = next();
      assert.ok(!seen.has(h), `${what} changed the hash`);
      seen.add(h);
    }
  });
});
