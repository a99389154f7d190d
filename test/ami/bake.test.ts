import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BakeOptions, BakeResult } from "../../ami/bake";
import { readStackFile } from "../../infra/stack-file";
import { FakeEc2, NO_LEFTOVERS } from "../support/fake-aws";
import { bakeOnFake, linkProdApp } from "../support/bake-on-fake";
import { BuilderHost, demoWorkerEnv } from "../support/builder-host";
import { REPO } from "../support/pulumi-harness";

/**
 * `npm run bake-ami` end to end, in process: EC2 and SSM are the stateful fake, the builder is a
 * Debian root with its own sshd on 127.0.0.1 (the fake's instance address, and the login the key
 * pair would give, are pointed at it), everything else is real: the payload, the scripts, the
 * runner, the stack-file write-back and the prune.
 */
const SECRET = "v1:T0p5ecretCiphertext==";

function stackDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-bake-stack-"));
  fs.writeFileSync(
    path.join(dir, "Pulumi.prod.yaml"),
    fs.readFileSync(path.join(REPO, "Pulumi.prod.yaml"), "utf8") + `  kiln:secretEnv:\n    OPENSEARCH_PASSWORD:\n      secure: ${SECRET}\n`,
  );
  linkProdApp(dir);
  return dir;
}


interface Run {
  result: BakeResult;
  output: string;
}

describe("bake-ami end to end (fake EC2, a real host over SSH)", function () {
  this.timeout(10 * 60_000);
  let fake: FakeEc2;
  let dir: string;

  beforeEach(() => {
    fake = new FakeEc2({ publicIp: "127.0.0.1" });
    dir = stackDir();
  });
  afterEach(() => {
    fake.restore();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const run = (host: BuilderHost | undefined, extra: Partial<BakeOptions> = {}): Promise<Run> => bakeOnFake(fake, dir, () => host, extra);

  it("bakes, records the image, tears everything down; then reuses it while nothing changed", async () => {
    const host = await BuilderHost.start({ user: "ec2-user" });
    let first: Run;
    try {
      fs.mkdirSync(host.path("/home/ec2-user/.ssh"), { recursive: true });
      fs.writeFileSync(host.path("/root/.bash_history"), "export AWS_SECRET_ACCESS_KEY=oops\n");
      first = await run(host);
      assert.equal(first.result.exitCode, 0, first.output);
      // What a launched copy must not inherit is gone from the builder.
      assert.equal(fs.existsSync(host.path("/root/.bash_history")), false);
      assert.equal(fs.existsSync(host.path("/home/ec2-user/.ssh/authorized_keys")), false);
      assert.equal(fs.readFileSync(host.path("/etc/machine-id"), "utf8"), "");
      // An absolute link inside the root: read it, not follow it.
      assert.equal(fs.readlinkSync(host.path("/etc/systemd/system/multi-user.target.wants/kiln-worker.service")), "/etc/systemd/system/kiln-worker.service");
    } finally {
      await host.stop();
    }

    const imageId = first.result.imageId!;
    assert.match(imageId, /^ami-/);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS, "no builder, key pair, security group or half-made image left");
    const image = fake.images.get(imageId)!;
    assert.equal(image.state, "available");
    const tags = image.tags as Record<string, string>;
    assert.equal(tags["kiln:stack"], "prod");
    assert.equal(tags["kiln:content-hash"], first.result.state.contentHash);
    assert.match(tags["kiln:git-commit"], /^[0-9a-f]{40}(-dirty)?$/);
    assert.equal(tags["kiln:base-image"], fake.al2023.x86_64);
    assert.match(image.name, /^kiln-worker-prod-\d{8}T\d{6}Z$/);

    // Published: the stack file points at it, its comments and secret untouched; the manifest says how.
    const { raw } = readStackFile(dir, "prod");
    assert.equal(raw.values["kiln:amiId"], imageId);
    const text = fs.readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8");
    assert.match(text, /# Recorded by `npm run bake-ami -- --stack prod`\./);
    assert.ok(text.includes(`secure: ${SECRET}`));
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
    assert.equal(manifest.ami, imageId);
    assert.equal(manifest.reused, false);
    assert.deepEqual(
      manifest.steps.filter((s: { status: string }) => s.status === "done").map((s: { name: string }) => s.name),
      ["pre-validate", "resolve-base-image", "prepare-payload", "reuse-image", "reap-expired", "key-pair", "security-group", "instance-profile", "run-builder",
        "test-route-to-builder", "ssm-tunnel", "wait-for-ssh", "upload", "provision", "validate", "clean", "create-image", "distribute", "publish", "prune"],
    );
    assert.match(first.output, /Baked ami-\w+ \(kiln-worker-prod-/);

    // Same inputs again: the same image, found by its content hash; nothing launched.
    const launchesBefore = fake.inputs("RunInstances").length;
    const t0 = Date.now();
    const second = await run(undefined);
    assert.equal(second.result.exitCode, 0, second.output);
    assert.equal(second.result.reused, true);
    assert.equal(second.result.imageId, imageId);
    assert.equal(fake.inputs("RunInstances").length, launchesBefore, "nothing launched");
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
    assert.match(second.output, /Reused ami-\w+: nothing changed since it was baked/);
    assert.ok(Date.now() - t0 < 30_000);

    // --dry-run says it would reuse, and creates nothing.
    const mutations = fake.mutations().length;
    const dry = await run(undefined, { dryRun: true });
    assert.equal(dry.result.exitCode, 0, dry.output);
    assert.match(dry.output, new RegExp(`reuse\\s+${imageId}: same content hash`));
    assert.match(dry.output, new RegExp(`content hash\\s+${first.result.state.contentHash}`));
    assert.equal(fake.mutations().length, mutations, "a dry run changes nothing");
  });

  it("--on-error=abort keeps the builder for debugging with a way in; --reap then removes it", async () => {
    // No host to route to: SSH to 127.0.0.1:22 fails, after a 1 s deadline.
    const failed = await run(undefined, { onError: "abort", settings: { pollMs: 1, instanceTimeout: 5, imageTimeout: 5, sshTimeout: 1 } });
    assert.equal(failed.result.exitCode, 1, failed.output);
    assert.match(failed.output, /Failed in wait-for-ssh: gave up on 127\.0\.0\.1:22 after 1 s/);
    const kept = fake.leftovers();
    assert.equal(kept.instances.length, 1);
    assert.equal(kept.keyPairs.length, 1);
    assert.equal(kept.securityGroups.length, 1);
    const login = /log in with: ssh -i (\S+) ec2-user@127\.0\.0\.1/.exec(failed.output);
    assert.ok(login, failed.output);
    assert.equal(fs.statSync(login[1]).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(login[1], "utf8"), /BEGIN OPENSSH PRIVATE KEY/);
    fs.rmSync(login[1]);
    assert.match(failed.output, /reap it sooner with: npm run bake-ami -- --stack prod --reap/);

    // Within the build deadline a builder may belong to a running bake: spared.
    const early = await run(undefined, { reap: true });
    assert.equal(early.result.exitCode, 0, early.output);
    assert.equal(fake.leftovers().instances.length, 1);
    // Past it, it goes with its key pair and security group.
    const reaped = await run(undefined, { reap: true, settings: { pollMs: 1, instanceTimeout: 5, builderLifetimeMinutes: 0 } });
    assert.equal(reaped.result.exitCode, 0, reaped.output);
    assert.match(reaped.output, /reaped 1 builder\(s\), 1 key pair\(s\), 1 security group\(s\)/);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("--target ssh provisions an existing host with the builder-side steps alone, the application included, touching no AWS API", async () => {
    const host = await BuilderHost.start({ user: "admin" });
    // An application beside the stack file (kiln:bake.appDir): its numbered scripts install it.
    const app = path.join(dir, "app");
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, "worker.py"), "print('hello')\n");
    fs.writeFileSync(
      path.join(app, "10-install.sh"),
      '#!/bin/sh\n# step: install the file processor\nset -eu\ninstall -d /opt/file-processor\ninstall -m 0644 "$KILN_APP/worker.py" /opt/file-processor/worker.py\necho "installed for $KILN_STACK"\n',
    );
    try {
      const { result, output } = await run(undefined, {
        target: "ssh",
        ssh: host.target(),
        adjustSteps: undefined,
        settings: { sshTimeout: 20, appDir: app, selfCheckEnv: demoWorkerEnv("ap-northeast-1") },
      });
      assert.equal(result.exitCode, 0, output);
      assert.deepEqual(result.report!.steps.map((s) => `${s.name} ${s.status}`), [
        "wait-for-ssh done", "upload done", "provision done", "validate done", "clean done",
      ]);
      assert.match(output, /==> \[3\/5\] /);
      assert.match(output, /provision: \[8\/8\] application: install the file processor\n[\s\S]*provision: installed for prod/);
      assert.equal(fs.readFileSync(host.path("/opt/file-processor/worker.py"), "utf8"), "print('hello')\n");
      assert.match(output, /Provisioned 127\.0\.0\.1: the host now holds what the image would/);
      assert.equal(fs.readlinkSync(host.path("/etc/systemd/system/multi-user.target.wants/kiln-worker.service")), "/etc/systemd/system/kiln-worker.service");
      assert.equal(fs.existsSync(host.path("/home/admin/.ssh/authorized_keys")), false);
    } finally {
      await host.stop();
    }
    assert.deepEqual(fake.calls, [], "no EC2 or SSM call");
    assert.equal(readStackFile(dir, "prod").raw.values["kiln:amiId"], "ami-0a1b2c3d4e5f60718");
  });

  it("--dry-run of a first bake prints what it would create, and creates nothing", async () => {
    const { result, output } = await run(undefined, { dryRun: true });
    assert.equal(result.exitCode, 0, output);
    assert.match(output, /would create:\n\s+- key pair kiln-builder-[\w-]+ \(ed25519\)\n\s+- security group allowing SSH from 203\.0\.113\.0\/24/);
    assert.match(output, /- image kiln-worker-prod-\d{8}T\d{6}Z/);
    assert.deepEqual(fake.mutations(), []);
    assert.equal(readStackFile(dir, "prod").raw.values["kiln:amiId"], "ami-0a1b2c3d4e5f60718", "the stack file is untouched");
  });
});
